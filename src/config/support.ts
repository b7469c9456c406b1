/**
 * The support gate of this release. The whole schema parses; features that land in a later
 * release are refused here with one clear message. Each row is one gate: a later release deletes
 * its row.
 *
 * {@linkcode checkRunnable} is the one judgement of "can these exports run" that `rivet run`,
 * `rivet doctor` and the library's `runExports` all apply: the gate, then the plan checks.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import { planChecks } from "./plan_checks.ts";
import { cdcChecks } from "./cdc_checks.ts";

/** One gate: the key it reads, the values this release accepts, how to read the key. */
interface Gate<T> {
  readonly key: string;
  /** The value as written, or undefined when the key is absent/default (always supported). */
  readonly read: (subject: T) => string | boolean | undefined;
  /** Accepted values; empty means "any written value is unsupported". */
  readonly supported: readonly string[];
}

// Every top-level key runs in this release; the list stays for the next gated feature.
const configGates: readonly Gate<ConfigSpec>[] = [];

const exportGates: readonly Gate<ExportSpec>[] = [
  {
    key: "mode",
    read: (e) => e.mode,
    supported: ["full", "incremental", "time_window", "chunked", "cdc"],
  },
  {
    key: "destination.type",
    read: (e) => e.destination.kind,
    supported: ["local", "stdout", "s3", "gcs", "azure"],
  },
  { key: "format", read: (e) => e.format.kind, supported: ["parquet", "csv"] },
];

function check<T>(gates: readonly Gate<T>[], subject: T, where: string): void {
  for (const gate of gates) {
    const value = gate.read(subject);
    if (value === undefined) continue;
    if (typeof value === "string" && gate.supported.includes(value)) continue;
    const shown = typeof value === "string" ? `${gate.key} '${value}'` : gate.key;
    const supported = gate.supported.length > 0
      ? `supported: ${gate.supported.join(", ")}`
      : `remove ${gate.key}`;
    throw new ConfigError(
      `${where}${shown} is not supported yet by this version of rivet (${supported})`,
      { code: "config.not_supported" },
    );
  }
}

/**
 * Refuses features this release does not implement yet (none today: every mode, destination
 * and format of the schema runs; a value outside them, from a hand-built spec, is refused).
 *
 * @param config The loaded config (source-level and top-level keys).
 * @param exports The exports about to run.
 * @throws {ConfigError} `config.not_supported` naming the key, its value and the export.
 *
 * @example
 * ```ts
 * import { assertSupported } from "./support.ts";
 * import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
 * const config = { source: { kind: "postgres" }, parallelExports: false } as ConfigSpec;
 * const exp = { name: "o", mode: "stream" } as unknown as ExportSpec;
 * try { assertSupported(config, [exp]); throw new Error("accepted"); } catch (e) {
 *   if (!(e as Error).message.includes("mode 'stream' is not supported yet")) throw e;
 * }
 * ```
 */
export function assertSupported(config: ConfigSpec, exports: readonly ExportSpec[]): void {
  check(configGates, config, "");
  for (const exp of exports) check(exportGates, exp, `export '${exp.name}': `);
}

/**
 * Refuses an export this release cannot run (its mode, destination or format), whatever config
 * it came from.
 *
 * @param exp The export.
 * @throws {ConfigError} `config.not_supported` naming the key, its value and the export.
 */
export function assertExportSupported(exp: ExportSpec): void {
  check(exportGates, exp, `export '${exp.name}': `);
}

/**
 * Whether the selected exports of a config can run: the support gate of this release, then
 * the plan checks (key combinations that parse but cannot run together). `rivet run`,
 * `rivet doctor` and the library's `runExports` call this one function, so they always agree.
 *
 * @param config The loaded config.
 * @param exports The exports about to run (or, for doctor, every export).
 * @param options Whether the run resumes (`--resume`).
 * @returns The warnings to show before the run.
 * @throws {ConfigError} `config.not_supported` or a `plan.*` code.
 *
 * @example
 * ```ts
 * import { checkRunnable } from "./support.ts";
 * import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
 * const config = { source: { kind: "postgres" } } as ConfigSpec;
 * const exp = { name: "o", mode: "full", destination: { kind: "stdout" }, format: { kind: "csv" },
 *   metaColumns: { exportedAt: false, rowHash: false } } as unknown as ExportSpec;
 * if (checkRunnable(config, [exp], { resume: false }).warnings.length !== 0) throw new Error();
 * ```
 */
export function checkRunnable(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: { resume: boolean },
): { warnings: string[] } {
  assertSupported(config, exports);
  cdcChecks(exports, config.source.kind);
  return planChecks(exports, options);
}
