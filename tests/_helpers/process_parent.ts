/**
 * A `--parallel-export-processes` parent whose children use the compiled binary's isolation
 * (`--process-child worker`: each child runs its export in a permission-narrowed worker) under
 * `deno run`, for tests that need that parent as a real process (to SIGKILL it). The CLI picks
 * that isolation only in a compiled binary.
 *
 * Usage: `deno run -A --unstable-worker-options tests/_helpers/process_parent.ts <config>`; exits
 * with the run's exit code.
 *
 * @module
 */
import { loadConfig } from "../../src/config/mod.ts";
import { runExportsInProcesses } from "../../src/engines/subprocess.ts";

if (import.meta.main) {
  const configPath = Deno.args[0];
  if (configPath === undefined) throw new Error("usage: process_parent.ts <config>");
  const config = await loadConfig(configPath);
  const result = await runExportsInProcesses(config, config.exports, {
    emit: () => {},
    signal: new AbortController().signal,
    params: {},
    cwd: Deno.cwd(),
    configPath: config.path,
    isolation: "worker",
  });
  Deno.exit(result.exitCode);
}
