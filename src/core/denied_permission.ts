/**
 * Recognises Deno's sandbox refusals (`NotCapable`: `Requires net access to "db:5432", run again
 * with the --allow-net flag`) and words them as the one flag the user has to add. A refusal is
 * permanent: the same command fails the same way until the permission is granted, so it is never
 * retried. The text is matched, not only the class, because a refusal inside a Web Worker reaches
 * the main thread as an error message (a worker's `error` event) with no class attached.
 *
 * Deno 2 throws `Deno.errors.NotCapable` for its own permission checks; `PermissionDenied` is the
 * operating system's `EACCES`, which no flag can fix, and is left to the callers' own messages.
 *
 * Layer: core. Imports nothing from `src/`; no Deno calls (the class is recognised by name).
 *
 * @module
 */

/** A permission Deno refused, and the flag that grants it. */
export interface DeniedPermission {
  /** `net`, `read`, `write`, `env`, `sys`, `run`, `ffi` or `import`. */
  readonly kind: string;
  /** The host, path, variable or program refused, when Deno named one. */
  readonly target: string | undefined;
  /** The flag to add, e.g. `--allow-net=db:5432`. */
  readonly flag: string;
  /** One line: `rivet needs --allow-net=db:5432 (Deno refused net access to "db:5432")`. */
  readonly message: string;
}

/** Error code of a permission refusal. */
export const PERMISSION_DENIED = "permission.denied";

const REQUIRES = /Requires (net|read|write|env|sys|run|ffi|import) access(?: to "([^"]*)")?/;
// rivet's state database and its SQLite side files: grant the folder, which SQLite writes into.
const STATE_FILE = /(?:^|\/)\.rivet_state\.db(?:-wal|-shm|-journal)?$/;

/**
 * The permission a thrown value or an error message says Deno refused.
 *
 * @param error A thrown value (a `NotCapable` error, or an error whose `cause` chain holds one),
 *   or the message of a worker's `error` event.
 * @returns What was refused and the flag that grants it; undefined when it is no Deno refusal.
 *
 * @example
 * ```ts
 * import { deniedPermission } from "./denied_permission.ts";
 * const d = deniedPermission('Requires net access to "db:5432", run again with the --allow-net flag');
 * if (d?.flag !== "--allow-net=db:5432") throw new Error(d?.flag);
 * ```
 */
export function deniedPermission(error: unknown): DeniedPermission | undefined {
  if (typeof error === "string") return fromMessage(error);
  let e = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e.name === "NotCapable") {
      return fromMessage(e.message) ?? {
        kind: "unknown",
        target: undefined,
        flag: "--allow-*",
        message: `rivet needs a Deno permission it was not given (${e.message})`,
      };
    }
    e = e.cause;
  }
  return undefined;
}

function fromMessage(message: string): DeniedPermission | undefined {
  const match = REQUIRES.exec(message);
  if (!match) return undefined;
  const kind = match[1]!;
  const target = match[2];
  let grant = target;
  if (target !== undefined && (kind === "read" || kind === "write") && STATE_FILE.test(target)) {
    grant = target.slice(0, target.lastIndexOf("/")) || "/";
  }
  const flag = grant === undefined || grant === "" ? `--allow-${kind}` : `--allow-${kind}=${grant}`;
  const what = target === undefined ? `${kind} access` : `${kind} access to "${target}"`;
  return { kind, target, flag, message: `rivet needs ${flag} (Deno refused ${what})` };
}
