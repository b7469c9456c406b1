/**
 * Command-line entry of rivet: `deno run -A cli.ts run -c plan.yaml`, or the compiled binary.
 * The only `Deno.exit` of the codebase.
 *
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
