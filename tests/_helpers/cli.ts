/**
 * Runs the rivet CLI for tests: in-process through `main()` with captured output (fast), or as a
 * real subprocess of `cli.ts` (exit codes, signals, environment).
 *
 * @module
 */
import { main } from "../../src/cli/main.ts";

/** Captured result of a CLI call. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Calls `main(args)` in this process, capturing stdout/stderr text.
 *
 * @param args CLI arguments.
 * @returns Exit code and output.
 */
export async function runCli(args: string[]): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    io: { out: (t) => (stdout += t), err: (t) => (stderr += t), errIsTerminal: false },
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

/**
 * Spawns `deno run -A cli.ts <args>` and waits for it.
 *
 * @param args CLI arguments.
 * @param options Working directory and extra environment.
 * @returns Exit code and output.
 */
export async function spawnCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, ...args],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: options.env ?? {},
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  return decoded(out);
}

/**
 * Runs `deno <argv>` from `cwd` with a cleared environment holding only `env` and Deno's own
 * variables (`PATH`, `HOME`, `DENO_DIR`, `XDG_CACHE_HOME`, `TZ`): how a sandboxed command line
 * is run as a user would type it.
 *
 * @param argv Arguments after `deno`.
 * @param cwd Working directory.
 * @param env The only other variables.
 * @returns Exit code and output.
 */
export async function runDenoClean(
  argv: readonly string[],
  cwd: string,
  env: Record<string, string>,
): Promise<CliResult> {
  const own: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TZ"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) own[name] = value;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...argv],
    cwd,
    clearEnv: true,
    env: { ...own, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return decoded(out);
}

/** A finished command's exit code and text output. */
function decoded(out: Deno.CommandOutput): CliResult {
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
