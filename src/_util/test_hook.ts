/**
 * Fault-injection points for the crash tests, compiled into every build (as in the Rust tool) so
 * that the tests exercise the binary users run. The points, what a crash at each leaves and what
 * the next run does are listed in docs/run-guarantees.md ("Crash points"):
 *
 * - `RIVET_TEST_CRASH_AT=<point>` exits the process with code 86 at once, skipping `finally`
 *   blocks and disposers, which is as close to a kill as JavaScript gets;
 * - `RIVET_TEST_BLOCK_AT=<point>` sleeps `RIVET_TEST_BLOCK_MS` milliseconds (default 10000) at the
 *   point so a test can send a real SIGKILL or SIGTERM while the process sits there.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/** Exit code of an injected crash, distinct from every rivet exit code. */
export const CRASH_EXIT_CODE = 86;

interface Hooks {
  readonly crashAt: string | undefined;
  readonly blockAt: string | undefined;
  readonly blockMs: number;
}

// Read once, lazily: production runs pay one `undefined` check per point after the first call.
let hooks: Hooks | null | undefined;

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    // No env permission (a narrowed worker): hooks are a test feature, so treat as unset.
    return undefined;
  }
}

function loadHooks(): Hooks | null {
  const crashAt = readEnv("RIVET_TEST_CRASH_AT");
  const blockAt = readEnv("RIVET_TEST_BLOCK_AT");
  if (crashAt === undefined && blockAt === undefined) return null;
  const ms = Number(readEnv("RIVET_TEST_BLOCK_MS") ?? "10000");
  return { crashAt, blockAt, blockMs: Number.isFinite(ms) && ms >= 0 ? ms : 10000 };
}

/**
 * Marks a named point of the write path (`before_commit_rename`, `after_file_write`, …). Does
 * nothing unless a test hook names this point.
 *
 * @param name The point, e.g. `before_commit_rename` or `after_chunk_file:3`.
 * @returns Nothing when no hook is set (so the common path is synchronous); a promise that
 *   resolves after the configured sleep when a block hook names the point.
 *
 * @example
 * ```ts
 * import { crashPoint } from "./test_hook.ts";
 * await crashPoint("after_file_write"); // a no-op unless RIVET_TEST_*_AT names it
 * ```
 */
export function crashPoint(name: string): Promise<void> | undefined {
  if (hooks === undefined) hooks = loadHooks();
  if (hooks === null) return undefined;
  if (hooks.crashAt === name) {
    console.error(`rivet: test hook: crashing at ${name}`);
    if (crashHandler) {
      // In a worker, Deno.exit ends only the worker: the handler asks the main thread to end
      // the process, and this thread never goes on.
      crashHandler(name);
      return new Promise(() => {});
    }
    Deno.exit(CRASH_EXIT_CODE);
  }
  if (hooks.blockAt === name) {
    console.error(`rivet: test hook: blocking ${hooks.blockMs} ms at ${name}`);
    return new Promise((resolve) => setTimeout(resolve, hooks?.blockMs ?? 0));
  }
  return undefined;
}

let crashHandler: ((point: string) => void) | undefined;

/**
 * Replaces the process exit of a crash point (worker threads: `Deno.exit` there ends only the
 * worker, so the handler tells the main thread to exit with {@linkcode CRASH_EXIT_CODE}).
 *
 * @param handler Called with the point's name; the crashing thread then never resumes.
 */
export function setCrashHandler(handler: (point: string) => void): void {
  crashHandler = handler;
}

/**
 * Makes `point` this thread's crash point whatever the environment says (the worker engine
 * uses it to crash one chosen worker: `RIVET_TEST_CRASH_AT=worker:<point>`).
 *
 * @param point The crash point's name.
 */
export function overrideCrashAt(point: string): void {
  if (hooks === undefined) hooks = loadHooks();
  hooks = { crashAt: point, blockAt: hooks?.blockAt, blockMs: hooks?.blockMs ?? 10000 };
}

/** Forgets the cached environment so unit tests can change it. Not for production use. */
export function resetTestHooks(): void {
  hooks = undefined;
}

/**
 * Whether a test asked to corrupt the data at `point` (`RIVET_TEST_TAMPER_AT=<point>`), e.g.
 * `staged_part`: every staged part gets a stray trailing line, so `run --validate`'s re-count
 * has something to catch. Always false unless that test variable is set.
 *
 * @param point The tamper point's name.
 * @returns True when the variable names it.
 */
export function tamperAt(point: string): boolean {
  return readEnv("RIVET_TEST_TAMPER_AT") === point;
}

/**
 * The sandbox probe of the tests (`RIVET_TEST_SANDBOX_PROBE`, a JSON list of permission
 * descriptors such as `{"name":"read","path":"/etc"}`): the state of each in this thread, asked
 * with `Deno.permissions.querySync` (nothing is read, written or connected). Lets a test see
 * what an export's worker may touch. Undefined unless the variable is set and readable.
 *
 * @returns One `name target: state` line per descriptor, or undefined.
 */
export function sandboxProbe(): string[] | undefined {
  const text = readEnv("RIVET_TEST_SANDBOX_PROBE");
  if (text === undefined) return undefined;
  try {
    const descriptors = JSON.parse(text) as Deno.PermissionDescriptor[];
    return descriptors.map((d) => {
      const target = Object.entries(d).filter(([k]) => k !== "name").map(([, v]) => v).join("");
      return `${d.name} ${target}: ${Deno.permissions.querySync(d).state}`;
    });
  } catch (error) {
    return [`probe failed: ${(error as Error).message}`];
  }
}
