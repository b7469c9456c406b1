/**
 * Command-line entry of rivet: `deno run -A cli.ts run -c plan.yaml`, or the compiled binary.
 * The only `Deno.exit` of the codebase.
 *
 * A `--parallel-export-processes` child (`--process-child`) also watches the pipe its parent holds
 * on its stdin: when the parent is gone, the run is aborted and the process ends within a second
 * (`src/engines/parent_watch.ts`), so no child outlives a killed parent.
 *
 * @module
 */
import { main } from "./src/cli/main.ts";
import { watchParent } from "./src/engines/parent_watch.ts";

/**
 * Runs the CLI with this process's arguments and exits with its code. Called here when this file
 * is the main module, and by the entry `scripts/compile.ts` generates for a binary (which first
 * records the build's commit and target).
 */
export async function start(): Promise<never> {
  const parentGone = Deno.args.includes("--process-child")
    ? watchParent({ onDeadline: () => Deno.exit(130) })
    : undefined;
  // The child keeps its own SIGINT/SIGTERM handling: the parent stops it with SIGTERM.
  Deno.exit(
    await main(Deno.args, parentGone ? { signal: parentGone, handleSignals: true } : {}),
  );
}

if (import.meta.main) await start();
