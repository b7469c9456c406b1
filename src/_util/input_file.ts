/**
 * The one reader of every file a config names (the config itself, `query_file`, `url_file`,
 * `tls.ca_file`, GCS `credentials_file` and the credential files the environment points at):
 * regular files only, each kind with a size cap, read with a bounded buffer.
 *
 * Why: reading a FIFO blocks until a writer comes, a device such as `/dev/zero` never ends, and a
 * file that grows while it is read can exhaust memory. The file is checked with `stat` before it
 * is opened (so a FIFO is never opened), checked again on the open handle (in case the path was
 * swapped in between), and read at most `maxBytes + 1` bytes.
 *
 * Layer: _util. Imports core/ only; one of the few `_util` modules that touch `Deno`.
 *
 * @module
 */
import { ConfigError, InterruptedError } from "../core/errors.ts";

/** Size caps of the file inputs, in bytes. */
export const INPUT_LIMITS = {
  /** The YAML config (`-c`): parsing cost grows with the size, so keep it modest. */
  config: 2 * 1024 * 1024,
  /** An export's `query_file`. */
  queryFile: 4 * 1024 * 1024,
  /** A file holding one secret or URL (`url_file`, credential JSON files). */
  secret: 64 * 1024,
  /** A PEM CA bundle (`tls.ca_file`): the system bundle is about 200 KiB. */
  caBundle: 1024 * 1024,
  /** A `rivet reconcile --format json` report (`repair --report`): about 250 bytes a chunk. */
  reconcileReport: 32 * 1024 * 1024,
} as const;

/**
 * A file input refused for its kind or size (exit 1). The message is a predicate that reads
 * after the file's name, e.g. `is a FIFO (named pipe), not a regular file`.
 */
export class InputFileError extends ConfigError {
  /**
   * @param message What is wrong with the file, without its name.
   * @param code `config.not_regular_file` or `config.file_too_large`.
   * @param hint The remedy.
   */
  constructor(message: string, code: string, hint: string) {
    super(message, { code, hint });
    this.name = "InputFileError";
  }

  /**
   * The same refusal as a sentence about the named input, e.g.
   * `source.url_file 'u.txt' is a FIFO (named pipe), not a regular file`.
   *
   * @param subject What the file is, naming it.
   * @returns A config error with this error's code and hint.
   */
  about(subject: string): ConfigError {
    return new ConfigError(`${subject} ${this.message}`, {
      code: this.code,
      cause: this,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    });
  }
}

/** Options of {@linkcode readInputText}. */
export interface ReadInputOptions {
  /** Largest accepted size in bytes (see {@linkcode INPUT_LIMITS}). */
  readonly maxBytes: number;
  /** Stops the read between chunks (Ctrl-C) with `InterruptedError`. */
  readonly signal?: AbortSignal;
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

function notRegular(info: Deno.FileInfo): InputFileError {
  const kind = kindOf(info);
  return new InputFileError(
    kind === "not a regular file" ? `is ${kind}` : `is ${kind}, not a regular file`,
    "config.not_regular_file",
    "point it at a regular file: rivet does not read pipes, devices or directories here",
  );
}

/** Human size of a byte count with binary units, e.g. `64 KiB`. */
export function formatLimit(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

function tooLarge(maxBytes: number): InputFileError {
  return new InputFileError(
    `is larger than the ${formatLimit(maxBytes)} limit for this input`,
    "config.file_too_large",
    "check that the path names the intended file; these inputs are small text files",
  );
}

/**
 * Reads a regular file as UTF-8 text, refusing anything else at once.
 *
 * OS errors (not found, permission denied) are thrown as Deno's own errors, so each caller keeps
 * its message for them; a file of the wrong kind or size throws {@linkcode InputFileError}.
 *
 * @param path The file (absolute, or relative to the working directory).
 * @param options The size cap and an optional abort signal.
 * @returns The text (a leading UTF-8 BOM removed; invalid bytes become U+FFFD).
 * @throws {InputFileError} `config.not_regular_file` or `config.file_too_large`.
 *
 * @example
 * ```ts ignore
 * import { INPUT_LIMITS, readInputText } from "./input_file.ts";
 * const yaml = await readInputText("rivet.yaml", { maxBytes: INPUT_LIMITS.config });
 * ```
 */
export async function readInputText(path: string, options: ReadInputOptions): Promise<string> {
  const before = await Deno.stat(path);
  if (!before.isFile) throw notRegular(before);
  if (before.size > options.maxBytes) throw tooLarge(options.maxBytes);
  using file = await Deno.open(path, { read: true });
  const opened = await file.stat();
  if (!opened.isFile) throw notRegular(opened);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    if (options.signal?.aborted) throw new InterruptedError();
    const n = await file.read(buffer);
    if (n === null) break;
    total += n;
    // The file grew after the stat: stop at the cap rather than follow it.
    if (total > options.maxBytes) throw tooLarge(options.maxBytes);
    chunks.push(buffer.slice(0, n));
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}
