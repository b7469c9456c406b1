/**
 * Destinations: bytes in, committed objects out. Never sees Arrow.
 *
 * Layer: destinations. Imports core/ and _util/ only; never sources/, formats/, state/ or
 * pipeline/.
 *
 * @module
 */
export { openDestination, type OpenDestinationOptions } from "./open.ts";
export { LocalDestination, type LocalDestinationOptions } from "./local.ts";
export { StdoutDestination } from "./stdout.ts";
export type { DestinationWarn } from "./_store_errors.ts";
