/**
 * Where rivet's own modules are: its TypeScript sources (`deno run cli.ts`), or the release bundle
 * that `scripts/compile.ts` builds and compiles (plain `.js` modules in one flat folder: the entry,
 * the worker entries `chunk_worker.js`, `export_worker.js` and `md5_worker.js`, the shared chunks,
 * and parquet-wasm's `parquet_wasm_bg.wasm`). Code that names one of its own files (a worker
 * entry, the wasm) asks here, so the same source works both ways.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/** True when this code runs from the release bundle (its modules are `.js`, not `.ts`). */
export const BUNDLED = !import.meta.url.endsWith(".ts");

/**
 * A worker entry beside the calling module: `./<stem>.ts` in the sources, `./<stem>.js` in the
 * bundle (whose chunks and entries share one folder).
 *
 * @param base The caller's `import.meta.url`.
 * @param stem The entry's file name without extension, e.g. `chunk_worker`.
 * @returns The entry's URL.
 *
 * @example
 * ```ts
 * import { siblingEntry } from "./bundle.ts";
 * const url = siblingEntry("file:///r/src/engines/workers.ts", "chunk_worker");
 * if (url.href !== "file:///r/src/engines/chunk_worker.ts") throw new Error(url.href);
 * if (siblingEntry("file:///b/chunk-X.js", "chunk_worker").href !== "file:///b/chunk_worker.js") {
 *   throw new Error();
 * }
 * ```
 */
export function siblingEntry(base: string, stem: string): URL {
  return new URL(`./${stem}.${base.endsWith(".ts") ? "ts" : "js"}`, base);
}

/**
 * The bundle's folder (entries, chunks, the wasm), or undefined when running from the sources.
 *
 * @returns A `file:` (or embedded) URL ending in `/`.
 */
export function bundleRoot(): URL | undefined {
  return BUNDLED ? new URL("./", import.meta.url) : undefined;
}

/** File name of parquet-wasm's module inside the bundle. */
export const BUNDLED_PARQUET_WASM = "parquet_wasm_bg.wasm";
