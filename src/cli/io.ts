/**
 * Text output of the CLI, injectable so tests can capture it. Data never goes through here:
 * a stdout destination writes bytes to `Deno.stdout` itself.
 *
 * Layer: cli.
 *
 * @module
 */
import { redact } from "../_util/redact.ts";

/** Where the CLI writes text. */
export interface CliIo {
  /** Machine output (`--json`, help, version). */
  readonly out: (text: string) => void;
  /** Human output: warnings, errors, summaries. Always redacted. */
  readonly err: (text: string) => void;
  /** Whether stderr is a terminal (colours, live progress). */
  readonly errIsTerminal: boolean;
  /**
   * Stderr without redaction, for the live progress block's ANSI escapes (which `err` strips).
   * The caller redacts every text it interpolates. Absent: no live progress, plain lines only.
   */
  readonly errRaw?: (text: string) => void;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/**
 * The process's own stdout and stderr.
 *
 * @returns The default {@linkcode CliIo}.
 */
export function processIo(): CliIo {
  return {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, redact(text)),
    errIsTerminal: Deno.stderr.isTerminal(),
    errRaw: (text) => writeAll(Deno.stderr, text),
  };
}
