/**
 * `rivet schema config`: prints the JSON Schema (draft 2020-12) of `rivet.yaml`, for editors and
 * CI linters. The schema is generated from the definitions the config loader uses
 * (`config/json_schema.ts`), so it describes exactly the keys this version accepts.
 *
 * Layer: cli.
 *
 * @module
 */
import { configJsonSchema } from "../../config/json_schema.ts";
import type { CommandContext } from "../main.ts";

/**
 * Runs `rivet schema config`.
 *
 * @param ctx Output.
 * @returns The exit code (0).
 */
export function schemaConfigCommand(ctx: CommandContext): number {
  ctx.io.out(JSON.stringify(configJsonSchema(), null, 2) + "\n");
  return 0;
}
