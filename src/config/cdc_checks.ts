/**
 * Plan checks of `mode: cdc` exports: the keys a change stream cannot honour, names that are
 * spliced into replication commands, and two exports that would fight over one slot or one
 * folder of `cdc-<seq>` parts.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { CDC_DEFAULTS } from "../core/cdc.ts";
import { ConfigError } from "../core/errors.ts";
import type { ExportSpec, SourceKind } from "../core/spec.ts";

const TABLE_NAME = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$/;
const OBJECT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function refuse(spec: ExportSpec, message: string, code: string, hint: string): never {
  throw new ConfigError(`export '${spec.name}': ${message}`, { code, hint });
}

/** Where the parts of a cdc export go, as one comparable string. */
function folderOf(spec: ExportSpec): string {
  const d = spec.destination;
  return [d.kind, d.bucket ?? "", d.path ?? "", d.prefix ?? ""].join("\u0000");
}

/**
 * Refuses cdc exports that cannot run.
 *
 * @param exports The selected exports (others are ignored).
 * @param sourceKind The config's source: two exports may share nothing that identifies a
 *   reader to the server (PostgreSQL: the slot; MySQL: the replica's server id).
 * @throws {ConfigError} `plan.cdc_*` naming the export, the key and the fix.
 *
 * @example
 * ```ts
 * import { cdcChecks } from "./cdc_checks.ts";
 * import type { ExportSpec } from "../core/spec.ts";
 * const spec = {
 *   name: "o", mode: "cdc", destination: { kind: "stdout" }, query: { kind: "table", table: "t" },
 *   metaColumns: { exportedAt: false, rowHash: false },
 * } as unknown as ExportSpec;
 * try { cdcChecks([spec]); throw new Error("accepted"); }
 * catch (e) { if (!(e as Error).message.includes("stdout")) throw e; }
 * ```
 */
export function cdcChecks(exports: readonly ExportSpec[], sourceKind?: SourceKind): void {
  const readers = new Map<string, string>();
  const folders = new Map<string, string>();
  for (const spec of exports) {
    if (spec.mode !== "cdc") continue;
    if (spec.destination.kind === "stdout") {
      refuse(
        spec,
        "mode: cdc writes parts, checkpoints after each, and cannot write them to stdout",
        "plan.cdc_stdout",
        "write to a local or cloud destination, or stream changes as NDJSON with " +
          "`rivet cdc --source-env VAR --table T`",
      );
    }
    const unsupported: [string, boolean][] = [
      ["partition_by", spec.partitionBy !== undefined],
      [
        "max_file_size (parts roll with cdc.rollover and cdc.rollover_memory_mb)",
        spec.maxFileSize !== undefined,
      ],
      ["quality", spec.quality !== undefined],
      ["meta_columns", spec.metaColumns.exportedAt || spec.metaColumns.rowHash],
    ];
    for (const [key, on] of unsupported) {
      if (on) {
        refuse(
          spec,
          `mode: cdc cannot be combined with ${key}`,
          "plan.cdc_conflicting_keys",
          `remove ${key.split(" ")[0]} from the export`,
        );
      }
    }
    const table = spec.query.kind === "table"
      ? (spec.query.schema ? `${spec.query.schema}.${spec.query.table}` : spec.query.table)
      : "";
    if (!TABLE_NAME.test(table)) {
      refuse(
        spec,
        `cdc reads the change log of a table named with letters, digits and _ only ` +
          `(schema.table); '${table}' is not one`,
        "plan.cdc_table_name",
        "name the table plainly (a view or a quoted name cannot be captured)",
      );
    }
    const cdc = spec.cdc ?? {};
    for (
      const [key, value] of [
        ["slot", cdc.slot],
        ["publication", cdc.publication],
        ["capture_instance", cdc.captureInstance],
      ] as const
    ) {
      if (value !== undefined && !OBJECT_NAME.test(value)) {
        refuse(
          spec,
          `cdc.${key} '${value}' is not a plain name (a letter or _, then letters, digits, _; ` +
            "at most 63)",
          "plan.cdc_bad_name",
          `rename cdc.${key}`,
        );
      }
    }
    for (
      const [key, value] of [
        ["rollover", cdc.rollover],
        ["rollover_memory_mb", cdc.rolloverMemoryMb],
        ["rollover_seconds", cdc.rolloverSeconds],
        ["max_events", cdc.maxEvents],
        ["server_id", cdc.serverId],
      ] as const
    ) {
      if (value !== undefined && (value < 1 || (key === "server_id" && value > 4294967295))) {
        refuse(
          spec,
          `cdc.${key} must be ${key === "server_id" ? "between 1 and 4294967295" : "at least 1"}`,
          "plan.cdc_bad_value",
          `set cdc.${key} to a positive number or remove it`,
        );
      }
    }
    const reader: readonly [string, string, string] | undefined = sourceKind === "postgres"
      ? ["replication slot", "slot", cdc.slot ?? CDC_DEFAULTS.slot]
      : sourceKind === "mysql"
      ? ["replica server id", "server_id", String(cdc.serverId ?? CDC_DEFAULTS.serverId)]
      : undefined;
    if (reader !== undefined) {
      const [what, key, value] = reader;
      const owner = readers.get(value);
      if (owner !== undefined) {
        refuse(
          spec,
          `uses the ${what} '${value}' of export '${owner}'; the server serves one reader per ${what}`,
          "plan.cdc_shared_reader",
          `give each cdc export its own cdc.${key}`,
        );
      }
      readers.set(value, spec.name);
    }
    const folder = folderOf(spec);
    const folderOwner = folders.get(folder);
    if (folderOwner !== undefined) {
      refuse(
        spec,
        `writes its cdc-<seq> parts to the destination of export '${folderOwner}'; the two ` +
          "would overwrite each other's parts",
        "plan.cdc_shared_destination",
        "give each cdc export its own destination path or prefix",
      );
    }
    folders.set(folder, spec.name);
  }
}
