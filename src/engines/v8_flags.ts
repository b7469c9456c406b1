/**
 * The V8 settings rivet runs with: baked into the compiled binary (`scripts/compile.ts`), given to
 * the `deno run` children of `--parallel-export-processes`, and used by `deno task bench`, so all
 * three measure and run the same program.
 *
 * `--max-semi-space-size=4` (MB) caps V8's young generation. Left alone, V8 grows it to 16 MB a
 * half-space (48 MB in all) under the allocation rate of a wide export, and that garbage stays
 * resident: a 2M-row, 21-column export to Parquet peaked at 325 MB with the default and 259 MB
 * with 4 MB, at the same speed (17.0 s against 17.5 s, within the noise; narrow 10M unchanged).
 *
 * Layer: engines. Pure data.
 *
 * @module
 */

/** V8 flags, as given to `--v8-flags=` (comma-separated). */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** The one Deno argument that applies {@linkcode V8_FLAGS}. */
export const V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS.join(",")}`;
