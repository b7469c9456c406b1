/**
 * The version of rivet, kept equal to `deno.json`'s `version` (a test checks it).
 *
 * @module
 */

/** Semantic version of this build. */
export const VERSION = "0.1.0";
