/**
 * `rivet summarize-events`: reads a `rivet run --events ndjson` stream (a file or stdin) and
 * writes the GitHub Actions job summary (Markdown) and step outputs. The GitHub Action runs it
 * after `rivet run`, so the summary is rendered by the binary itself (runners have no Deno); the
 * rendering lives in `render/github_summary.ts`.
 *
 * The stream is read line by line (its size is not bounded by memory); the summary and outputs
 * files are appended to, as GitHub expects of `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT`.
 *
 * Layer: cli.
 *
 * @module
 */
import { ConfigError, PermanentError } from "../../core/errors.ts";
import { ndjsonEventStream } from "../../core/event_protocol.ts";
import {
  formatGithubOutputs,
  renderGithubSummary,
  RunSummaryBuilder,
} from "../render/github_summary.ts";
import type { CommandContext } from "../main.ts";

/** Options of `rivet summarize-events`. */
export interface SummarizeEventsFlags {
  /** The NDJSON file; absent or `-`: stdin. */
  readonly events?: string;
  /** The exit code of the `rivet run` that wrote the stream. */
  readonly exitCode?: number;
  /** Append the Markdown here instead of printing it on stdout. */
  readonly summaryOut?: string;
  /** Append the outputs (`name=value` lines) here. */
  readonly outputsOut?: string;
}

async function openEvents(path: string | undefined): Promise<ReadableStream<Uint8Array>> {
  if (path === undefined || path === "-") return Deno.stdin.readable;
  try {
    return (await Deno.open(path, { read: true })).readable;
  } catch (error) {
    throw new ConfigError(`cannot read the events file ${path}: ${(error as Error).message}`, {
      code: "cli.events_file_unreadable",
      cause: error,
      hint: "pass the file 'rivet run --events ndjson > FILE' wrote, or '-' for stdin",
    });
  }
}

async function append(path: string, text: string, what: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, text, { append: true, create: true });
  } catch (error) {
    throw new PermanentError(`cannot write the ${what} to ${path}: ${(error as Error).message}`, {
      code: "cli.summary_write_failed",
      cause: error,
      hint: "check that the path is a writable file (in a GitHub step: $GITHUB_STEP_SUMMARY, " +
        "$GITHUB_OUTPUT)",
    });
  }
}

/**
 * Runs `rivet summarize-events`.
 *
 * @param flags The parsed options.
 * @param ctx Output.
 * @returns 0, or throws a {@linkcode ConfigError}/{@linkcode PermanentError} for a file it cannot
 *   read or write.
 */
export async function summarizeEventsCommand(
  flags: SummarizeEventsFlags,
  ctx: CommandContext,
): Promise<number> {
  const builder = new RunSummaryBuilder();
  const events = ndjsonEventStream(await openEvents(flags.events), {
    onInvalidLine: () => builder.skipLine(),
  });
  for await (const event of events) builder.add(event);
  const { markdown, outputs } = renderGithubSummary(builder.build(), {
    ...(flags.exitCode !== undefined ? { exitCode: flags.exitCode } : {}),
  });
  if (flags.summaryOut !== undefined) await append(flags.summaryOut, markdown, "summary");
  else ctx.io.out(markdown);
  if (flags.outputsOut !== undefined) {
    await append(flags.outputsOut, formatGithubOutputs(outputs), "outputs");
  }
  return 0;
}
