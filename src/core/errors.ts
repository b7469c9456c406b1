/**
 * Errors and exit codes shared by every layer.
 *
 * Layer: core. Imports nothing from `src/`.
 *
 * Exit codes are the Rust tool's (rivet-cli 0.14.1, its `src/error.rs`) so that schedulers can
 * swap binaries: 0 success, 1 config/usage/unclassified, 2 transient, 3 data integrity, 4 schema
 * drift, 130 interrupted.
 *
 * @module
 */

import { deniedPermission, PERMISSION_DENIED } from "./denied_permission.ts";

/** Process exit code of a rivet command. */
export type ExitCode = 0 | 1 | 2 | 3 | 4 | 130;

/**
 * Stable, snake_case error code such as `config.unknown_field` or `source.connect_failed`.
 * Codes are data: scripts may match on them, so never reword an existing one.
 */
export type ErrorCode = string;

/** Options of {@linkcode RivetError}. */
export interface RivetErrorOptions {
  /** Stable error code. */
  readonly code: ErrorCode;
  /** Exit class of the error. */
  readonly exitCode: ExitCode;
  /** The underlying error, kept for classification and debugging. */
  readonly cause?: unknown;
  /** A remedy, printed after the message on its own line. */
  readonly hint?: string;
}

/**
 * Base class of every error a user can act on. Anything else that escapes is a programmer error.
 *
 * @example Raise a config error
 * ```ts
 * import { RivetError } from "./errors.ts";
 * const err = new RivetError("export 'x': bad key", { code: "config.bad_key", exitCode: 1 });
 * if (err.exitCode !== 1) throw new Error("unexpected");
 * ```
 */
export class RivetError extends Error {
  /** Stable error code. */
  readonly code: ErrorCode;
  /** Exit class. */
  readonly exitCode: ExitCode;
  /** Optional remedy. */
  readonly hint: string | undefined;

  /**
   * @param message Sentence-case message naming the export and object, no trailing period.
   * @param options Code, exit class, cause and hint.
   */
  constructor(message: string, options: RivetErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RivetError";
    this.code = options.code;
    this.exitCode = options.exitCode;
    this.hint = options.hint;
  }
}

/** Options of the subclasses: the exit code is fixed by the class. */
export type ClassedErrorOptions = Omit<RivetErrorOptions, "exitCode">;

/** Config, usage or permanent error (exit 1): fix the input, do not retry. */
export class ConfigError extends RivetError {
  /**
   * @param message What is wrong, naming the key or export.
   * @param options Code, cause and hint.
   */
  constructor(message: string, options: ClassedErrorOptions) {
    super(message, { ...options, exitCode: 1 });
    this.name = "ConfigError";
  }
}

/** A permanent runtime failure (exit 1), e.g. a syntax error or a missing privilege. */
export class PermanentError extends RivetError {
  /**
   * @param message What failed.
   * @param options Code, cause and hint.
   */
  constructor(message: string, options: ClassedErrorOptions) {
    super(message, { ...options, exitCode: 1 });
    this.name = "PermanentError";
  }
}

/** Transient failure (exit 2): the same command may succeed when retried. */
export class TransientError extends RivetError {
  /**
   * @param message What failed.
   * @param options Code, cause and hint.
   */
  constructor(message: string, options: ClassedErrorOptions) {
    super(message, { ...options, exitCode: 2 });
    this.name = "TransientError";
  }
}

/** Data integrity failure (exit 3): stop and investigate. */
export class DataIntegrityError extends RivetError {
  /**
   * @param message What is inconsistent.
   * @param options Code, cause and hint.
   */
  constructor(message: string, options: ClassedErrorOptions) {
    super(message, { ...options, exitCode: 3 });
    this.name = "DataIntegrityError";
  }
}

/** Schema drift with `on_schema_drift: fail` (exit 4). */
export class SchemaDriftError extends RivetError {
  /**
   * @param message Which columns drifted.
   * @param options Code, cause and hint.
   */
  constructor(message: string, options: ClassedErrorOptions) {
    super(message, { ...options, exitCode: 4 });
    this.name = "SchemaDriftError";
  }
}

/** The run was interrupted by SIGINT/SIGTERM (exit 130). */
export class InterruptedError extends RivetError {
  /** @param message What was interrupted. */
  constructor(message = "Interrupted") {
    super(message, { code: "run.interrupted", exitCode: 130 });
    this.name = "InterruptedError";
  }
}

/** JSON-safe description of an error; crosses workers, processes and NDJSON unchanged. */
export interface ErrorInfo {
  readonly name: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly exitCode: ExitCode;
  readonly hint?: string;
  /** PostgreSQL SQLSTATE of a server error, for retry classes. */
  readonly sqlstate?: string;
  /** MySQL/MariaDB error number of a server error, for retry classes. */
  readonly errno?: number;
}

/**
 * Severity order used to pick the exit code of a multi-export run: 3 > 4 > 2 > 1 (the Rust tool's
 * "scariest failure" rule). 130 wins over everything because the operator asked to stop.
 */
const severity: Record<ExitCode, number> = { 0: 0, 1: 1, 2: 2, 4: 3, 3: 4, 130: 5 };

/**
 * The most serious of several exit codes.
 *
 * @param codes Exit codes of the parts of a run.
 * @returns The code a scheduler should see.
 *
 * @example
 * ```ts
 * import { worstExitCode } from "./errors.ts";
 * if (worstExitCode([1, 3, 2]) !== 3) throw new Error("3 is the scariest");
 * ```
 */
export function worstExitCode(codes: Iterable<ExitCode>): ExitCode {
  let worst: ExitCode = 0;
  for (const code of codes) if (severity[code] > severity[worst]) worst = code;
  return worst;
}

/**
 * Converts any thrown value to {@linkcode ErrorInfo}. Non-rivet errors are exit 1; a Deno
 * permission refusal (`NotCapable`) becomes `permission.denied` naming the flag to add.
 *
 * @param error The thrown value.
 * @returns Its JSON-safe description (message not yet redacted).
 */
export function toErrorInfo(error: unknown): ErrorInfo {
  // A Deno sandbox refusal is permanent however a layer wrapped it (as transient too): never
  // retried, one line naming the flag. Integrity, drift and interruption keep their class.
  const denied = error instanceof RivetError && error.exitCode !== 1 && error.exitCode !== 2
    ? undefined
    : deniedPermission(error);
  if (denied) {
    return {
      name: "PermanentError",
      code: PERMISSION_DENIED,
      message: denied.message,
      exitCode: 1,
    };
  }
  if (error instanceof RivetError) {
    // Driver codes ride along when a source attached them (e.g. PgTransientError.sqlstate).
    const { sqlstate, errno } = error as { sqlstate?: unknown; errno?: unknown };
    return {
      name: error.name,
      code: error.code,
      message: error.message,
      exitCode: error.exitCode,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(typeof sqlstate === "string" ? { sqlstate } : {}),
      ...(typeof errno === "number" ? { errno } : {}),
    };
  }
  const err = error instanceof Error ? error : new Error(String(error));
  return { name: err.name, code: "internal.unexpected", message: err.message, exitCode: 1 };
}

/**
 * Rebuilds an error from its {@linkcode ErrorInfo}, e.g. one a worker posted: `toErrorInfo` of
 * the result gives the same info back.
 *
 * @param info The error's description.
 * @returns A `RivetError` carrying the same code, class, hint and driver codes.
 *
 * @example
 * ```ts
 * import { errorFromInfo, toErrorInfo, TransientError } from "./errors.ts";
 * const info = toErrorInfo(new TransientError("lost", { code: "source.lost" }));
 * if (toErrorInfo(errorFromInfo(info)).exitCode !== 2) throw new Error();
 * ```
 */
export function errorFromInfo(info: ErrorInfo): RivetError {
  const error = new RivetError(info.message, {
    code: info.code,
    exitCode: info.exitCode,
    ...(info.hint === undefined ? {} : { hint: info.hint }),
  });
  error.name = info.name;
  if (info.sqlstate !== undefined) Object.assign(error, { sqlstate: info.sqlstate });
  if (info.errno !== undefined) Object.assign(error, { errno: info.errno });
  return error;
}

/**
 * Error codes of a local resource that ran out: disk space or quota (`destination.disk_full`) and
 * file handles (`destination.too_many_open_files`). They are transient (exit 2): the same command
 * succeeds once the operator has freed the resource, so a checkpointed run stays resumable. They
 * are not retried within the run: nothing frees a full disk by waiting a few seconds, and more
 * writes would only fill it further.
 */
export const RESOURCE_EXHAUSTED_CODES: readonly ErrorCode[] = [
  "destination.disk_full",
  "destination.too_many_open_files",
];

/**
 * Whether an error says that a local resource ran out (see {@linkcode RESOURCE_EXHAUSTED_CODES}).
 *
 * @param info The error's description.
 * @returns True for a full disk, an exceeded quota or too many open files.
 *
 * @example
 * ```ts
 * import { isResourceExhausted } from "./errors.ts";
 * if (!isResourceExhausted({ code: "destination.disk_full" })) throw new Error();
 * ```
 */
export function isResourceExhausted(info: Pick<ErrorInfo, "code">): boolean {
  return RESOURCE_EXHAUSTED_CODES.includes(info.code);
}

/**
 * Which local resource an operating-system error says ran out: `disk_full` for ENOSPC and EDQUOT,
 * `too_many_open_files` for EMFILE and ENFILE. Deno reports the errno name as `code`; the
 * `(os error N)` suffix of the message (Linux numbers) is the fallback.
 *
 * @param cause What a file-system call threw.
 * @returns The resource, or undefined for any other error.
 *
 * @example
 * ```ts
 * import { resourceErrorKind } from "./errors.ts";
 * const e = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * if (resourceErrorKind(e) !== "disk_full") throw new Error();
 * ```
 */
export function resourceErrorKind(
  cause: unknown,
): "disk_full" | "too_many_open_files" | undefined {
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return "disk_full";
  if (code === "EMFILE" || code === "ENFILE") return "too_many_open_files";
  const message = cause instanceof Error ? cause.message : "";
  const errno = /\(os error (\d+)\)/.exec(message)?.[1];
  if (errno === "28" || errno === "122") return "disk_full";
  if (errno === "24" || errno === "23") return "too_many_open_files";
  return undefined;
}
