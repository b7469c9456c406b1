/**
 * Loads parquet-wasm once per thread, without needing read permission at import time.
 *
 * The package's default (node) entry reads its .wasm with `readFileSync` when imported, which
 * fails in a worker started with `read: false`. The `esm` entry is inert until `initSync` gets a
 * compiled `WebAssembly.Module`, so a parent can compile the module once and hand it to workers
 * (`postMessage` clones a `WebAssembly.Module`). From the sources the .wasm is the package's file
 * (`import.meta.resolve`); in the release bundle (and the binary compiled from it) it sits beside
 * the bundle's modules, and `Deno.readFile` reads it from the binary's embedded files.
 *
 * Layer: formats (private). The one place in formats/ that touches `Deno.*`, for the wasm bytes.
 *
 * @module
 */
import { initSync, wasmMemory } from "parquet-wasm/esm";
import { PermanentError } from "../core/errors.ts";
import { BUNDLED_PARQUET_WASM, bundleRoot } from "../_util/bundle.ts";
import { deniedPermission, PERMISSION_DENIED } from "../core/denied_permission.ts";

let loaded: Promise<WebAssembly.Module> | undefined;
let ready = false;

/**
 * Compiles the parquet-wasm module from the package's .wasm file.
 *
 * @returns The compiled module, ready for `loadParquetWasm` here or in a worker.
 */
export async function compileParquetWasm(): Promise<WebAssembly.Module> {
  const root = bundleRoot();
  const url = root
    ? new URL(BUNDLED_PARQUET_WASM, root)
    : new URL(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"));
  try {
    return await WebAssembly.compile(await Deno.readFile(url));
  } catch (cause) {
    // A narrowed `deno run` without read access to the package: name the flag, in one line.
    const denied = deniedPermission(cause);
    if (denied) throw new PermanentError(denied.message, { code: PERMISSION_DENIED, cause });
    throw new PermanentError(
      `Cannot load the Parquet writer (${url.pathname}): ${(cause as Error).message}; ` +
        `grant read access to that file, or pass a compiled module to loadParquetWasm`,
      { code: "format.parquet_wasm_unavailable", cause },
    );
  }
}

/**
 * Instantiates parquet-wasm in this thread; later calls are no-ops that return the same module.
 *
 * @param module A module compiled elsewhere (e.g. posted by the parent thread); compiled from
 *   the package file when omitted.
 * @returns The module in use, so it can be posted on to workers.
 */
export function loadParquetWasm(module?: WebAssembly.Module): Promise<WebAssembly.Module> {
  loaded ??= (async () => {
    const mod = module ?? await compileParquetWasm();
    initSync({ module: mod });
    ready = true;
    return mod;
  })();
  loaded.catch(() => loaded = undefined);
  return loaded;
}

/**
 * Current size of this thread's parquet-wasm linear memory (it never shrinks), for measurements.
 *
 * @returns Bytes, or 0 before the module is loaded.
 */
export function parquetWasmMemoryBytes(): number {
  return ready ? wasmMemory().buffer.byteLength : 0;
}
