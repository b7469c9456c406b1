/**
 * The config layer's only door to the file system and the process environment, so the rest of
 * `config/` stays pure and testable.
 *
 * Layer: config (private).
 *
 * @module
 */

/** Reads a UTF-8 text file. Rejects with the Deno error (e.g. `Deno.errors.NotFound`). */
export function readText(path: string): Promise<string> {
  return Deno.readTextFile(path);
}

/** Resolves symlinks; rejects when the path does not exist. */
export function realPath(path: string): Promise<string> {
  return Deno.realPath(path);
}

/** Whether a file or directory exists (permission errors count as "exists" to fail later). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    return true;
  }
}

/** Reads an environment variable; undefined when unset. */
export function processEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

/** Whether an error means "no such file". */
export function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound;
}
