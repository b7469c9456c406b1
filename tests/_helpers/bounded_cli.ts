/**
 * Runs the rivet CLI as a subprocess with a deadline: a child that overruns it is killed
 * (SIGKILL), so a hang fails its test instead of the whole suite. `onStderr` lets a test act on
 * the child (send a signal) when a line appears.
 *
 * @module
 */

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

/** The outcome of a bounded subprocess run. */
export interface Bounded {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** True when the deadline passed and the child was killed. */
  readonly killed: boolean;
}

/**
 * Runs `deno run -A cli.ts <args>`, killing it (SIGKILL) after `timeoutMs`. `onStderr` sees the
 * stderr text as it grows and may act on the child (send a signal).
 */
export async function runBounded(
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    onStderr?: (text: string, child: Deno.ChildProcess) => void;
  } = {},
): Promise<Bounded> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, ...args],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: options.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs ?? 30_000);
  const collect = async (stream: ReadableStream<Uint8Array>, onText?: (t: string) => void) => {
    const dec = new TextDecoder();
    let text = "";
    for await (const chunk of stream) {
      text += dec.decode(chunk, { stream: true });
      onText?.(text);
    }
    return text;
  };
  const [stdout, stderr, status] = await Promise.all([
    collect(child.stdout),
    collect(child.stderr, (t) => options.onStderr?.(t, child)),
    child.status,
  ]);
  clearTimeout(timer);
  return {
    code: status.code,
    signal: status.signal,
    stdout,
    stderr,
    ms: Math.round(performance.now() - started),
    killed,
  };
}
