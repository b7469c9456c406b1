/**
 * What a local export committed, read back through its manifest: the `id` of every row of every
 * listed part (Parquet through the independent reader, CSV by its first column), and whether the
 * folder holds `_SUCCESS`.
 *
 * @module
 */
import { join } from "node:path";
import { readParquet } from "./parquet_oracle.ts";

/**
 * The ids an export committed to `dir`, sorted, and whether `_SUCCESS` is there.
 *
 * @param dir The export's local folder (holding `manifest.json`).
 * @returns The ids and the marker's presence.
 */
export async function manifestIds(dir: string): Promise<{ ids: number[]; success: boolean }> {
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  const ids: number[] = [];
  for (const part of manifest.parts as { path: string }[]) {
    const path = join(dir, part.path);
    if (path.endsWith(".parquet")) {
      for (const row of (await readParquet(path)).rows) ids.push(Number(row.id));
    } else {
      const lines = (await Deno.readTextFile(path)).split(/\r?\n/).filter((l) => l !== "");
      for (const line of lines.slice(1)) ids.push(Number(line.split(",")[0]));
    }
  }
  let success = true;
  try {
    await Deno.stat(join(dir, "_SUCCESS"));
  } catch {
    success = false;
  }
  return { ids: ids.sort((a, b) => a - b), success };
}

/**
 * The ids a completed export committed to `dir`, sorted.
 *
 * @param dir The export's local folder.
 * @returns The ids.
 * @throws {Error} When the folder holds no `_SUCCESS`.
 */
export async function committedIds(dir: string): Promise<number[]> {
  const { ids, success } = await manifestIds(dir);
  if (!success) throw new Error(`${dir} holds no _SUCCESS`);
  return ids;
}
