/**
 * The config layer's only door to the file system and the process environment, so the rest of
 * `config/` stays pure and testable. Files are read through `_util/input_file.ts`: regular files
 * only, each kind with its size cap.
 *
 * Layer: config (private).
 *
 * @module
 */
import { type ReadInputOptions, readInputText } from "../_util/input_file.ts";

export { INPUT_LIMITS, InputFileError } from "../_util/input_file.ts";

/**
 * Reads a regular file as UTF-8 text, within a size cap. Rejects with the Deno error for OS
 * failures (e.g. `Deno.errors.NotFound`) and `InputFileError` for a FIFO, device, directory or
 * oversized file.
 */
export function readInput(path: string, options: ReadInputOptions): Promise<string> {
  return readInputText(path, options);
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
