/**
 * Replacing a small file so that a crash leaves either its old or its new content, never a torn
 * one: the text goes to a temporary file in the same folder, is synced, then renamed over the
 * target (the checkpoint of a `mode: cdc` export).
 *
 * Layer: _util.
 *
 * @module
 */
import { readInputText } from "./input_file.ts";

/**
 * Writes `text` to `path` atomically; creates the folder when missing.
 *
 * @param path The file.
 * @param text Its new content.
 * @throws The file system's error; the temporary file is removed first.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/state.json`, "{}\n");
 * if (await Deno.readTextFile(`${dir}/state.json`) !== "{}\n") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : ".";
  const temp = `${dir}/.${path.slice(slash + 1)}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    try {
      const bytes = new TextEncoder().encode(text);
      let written = 0;
      while (written < bytes.byteLength) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * Reads a small file written by {@linkcode writeFileAtomic}, or undefined when there is none.
 *
 * @param path The file.
 * @param options Size cap and abort signal.
 * @returns Its text, or undefined when the file does not exist.
 */
export async function readFileIfPresent(
  path: string,
  options: { maxBytes: number; signal?: AbortSignal },
): Promise<string | undefined> {
  try {
    return await readInputText(path, options);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
