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

/**
 * Whether `key` passes {@linkcode checkKey}. The object stores' listings skip names that do not:
 * with a verbatim prefix such as `exports`, `exports/a.csv` lists as `/a.csv`, and folder
 * markers end in `/`; neither could be read, moved or written through the destination.
 *
 * @param key A key relative to the destination root.
 * @returns True when it is a valid key.
 *
 * @example
 * ```ts
 * import { isKey } from "./_keys.ts";
 * if (!isKey("a/b.csv") || isKey("/a.csv") || isKey("folder/")) throw new Error();
 * ```
 */
export function isKey(key: string): boolean {
  return keyProblem(key) === undefined;
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

/**
 * The staging key of `key`: `.<name>.tmp` in the same folder (the local destination's temp file,
 * and the hidden name the object stores stage a provisional upload under).
 *
 * @param key A key relative to the destination root.
 * @returns The staging key.
 *
 * @example
 * ```ts
 * import { stagingKeyOf } from "./_keys.ts";
 * if (stagingKeyOf("a/b.csv") !== "a/.b.csv.tmp") throw new Error();
 * ```
 */
export function stagingKeyOf(key: string): string {
  const slash = key.lastIndexOf("/");
  return `${key.slice(0, slash + 1)}.${key.slice(slash + 1)}.tmp`;
}

/**
 * The final key a staging key stands for, or undefined when `key` is no staging name.
 *
 * @param key A key relative to the destination root.
 * @returns `dir/<name>` for `dir/.<name>.tmp`.
 */
export function finalKeyOfStaging(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const name = key.slice(slash + 1);
  if (!isStagingName(name)) return undefined;
  return `${key.slice(0, slash + 1)}${name.slice(1, -4)}`;
}

/**
 * Whether the last component of a key is a staging name.
 *
 * @param key A key relative to the destination root.
 * @returns True for `dir/.<name>.tmp`.
 */
export function isStagingKey(key: string): boolean {
  return isStagingName(key.slice(key.lastIndexOf("/") + 1));
}

/**
 * Checks that `key` is a valid staging key, for `removeStaging`.
 *
 * @param key The key.
 * @param store The destination's name, for the message.
 * @returns The key.
 * @throws {ConfigError} `destination.bad_key` when it is no valid key or no staging name.
 */
export function checkStagingKey(key: string, store: string): string {
  checkKey(key);
  if (!isStagingKey(key)) {
    throw new ConfigError(
      `${store} destination refuses to remove ${JSON.stringify(key)} as a staging object: its ` +
        "name is not '.<name>.tmp'; committed objects are never removed this way",
      { code: "destination.bad_key" },
    );
  }
  return key;
}
