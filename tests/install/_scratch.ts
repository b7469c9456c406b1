/**
 * Small helpers of the installer and packaging tests: a temp folder removed when its scope ends,
 * and folder checks that tolerate a folder that was never created.
 *
 * @module
 */

/** A temp folder, removed with everything in it at the end of the `await using` scope. */
export interface Scratch extends AsyncDisposable {
  readonly path: string;
}

/** Creates a {@linkcode Scratch} folder. */
export async function scratch(prefix: string): Promise<Scratch> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** Whether anything (file, folder, dangling link) is at `path`. */
export function exists(path: string): Promise<boolean> {
  return Deno.lstat(path).then(() => true, (error) => {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  });
}

/** The sorted names in a folder; none when the folder does not exist. */
export async function listDir(path: string): Promise<string[]> {
  if (!(await exists(path))) return [];
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}
