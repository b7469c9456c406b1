/**
 * Object-key rules shared by every destination of this folder.
 *
 * Layer: destinations (private). Imports core/ only.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";

/**
 * Checks that a key stays inside the destination root: relative, `/`-separated, no `..`
 * component, no NUL, no backslash (a Windows separator that would escape on that platform),
 * and a non-empty final name.
 *
 * @param key The object key, relative to the destination root.
 * @returns The key, unchanged.
 * @throws {ConfigError} `destination.bad_key` naming the key.
 */
export function checkKey(key: string): string {
  const reason = keyProblem(key);
  if (reason !== undefined) {
    throw new ConfigError(
      `Destination key ${JSON.stringify(key)} is not allowed: ${reason}; use a relative key ` +
        "inside the destination",
      { code: "destination.bad_key" },
    );
  }
  return key;
}

function keyProblem(key: string): string | undefined {
  if (key.length === 0) return "it is empty";
  if (key.includes("\0")) return "it contains a NUL byte";
  if (key.includes("\\")) return "it contains a backslash";
  if (key.startsWith("/") || /^[A-Za-z]:/.test(key)) return "it is an absolute path";
  if (key.split("/").includes("..")) return "it has a '..' component";
  if (key.endsWith("/")) return "it names a folder, not an object";
  return undefined;
}

/**
 * Whether a file name is one of the local destination's staging files (`.<name>.tmp`).
 *
 * @param name A file name without folders.
 * @returns True for staging files, which listings skip.
 */
export function isStagingName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp") && name.length > 5;
}
