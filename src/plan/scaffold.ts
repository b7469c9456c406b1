/**
 * The YAML `rivet init` writes: one commented export per table of the inventory, in schema and
 * name order (the same database gives the same file), each with the reason for its mode and a
 * `# REVIEW:` line for every guess the user should check. The source URL is never written: the
 * scaffold names the environment variable (or the file) it is read from.
 *
 * Values are written plain when they cannot be mistaken for anything else, single-quoted when
 * they are printable, JSON-quoted otherwise; names in comments lose their control characters, so
 * no table or column name can add a line to the file.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import type { SourceKind, TlsMode } from "../core/spec.ts";
import { CDC_DEFAULTS } from "../core/cdc.ts";
import { dialectOf, quoteIdent } from "./dialect.ts";
import { type Inventory, SCAFFOLD_CHUNK_SIZE, type TableAnalysis } from "./inventory.ts";

/** Where the scaffolded source reads its URL. */
export type ScaffoldConnection =
  /** `url_env`; `fromUrl` when the user gave the URL itself (it is not written). */
  | { readonly form: "url_env"; readonly env: string; readonly fromUrl: boolean }
  /** `url_file`, relative to the config's folder. */
  | { readonly form: "url_file"; readonly path: string };

/** Where every export writes. */
export type ScaffoldDestination =
  | { readonly kind: "local" }
  | { readonly kind: "s3"; readonly bucket: string; readonly region?: string }
  | { readonly kind: "gcs"; readonly bucket: string; readonly credentialsFile?: string }
  | { readonly kind: "azure"; readonly container: string; readonly account: string };

/** The variable the scaffold names for the Azure account key. */
export const AZURE_KEY_ENV = "AZURE_STORAGE_KEY";

/** Options of {@linkcode renderScaffold}. */
export interface ScaffoldOptions {
  readonly connection: ScaffoldConnection;
  readonly destination: ScaffoldDestination;
  /** A `source.tls` block to write. */
  readonly tls?: { readonly mode: TlsMode; readonly caFile?: string };
  /** The schema listed, for the header. */
  readonly schema?: string;
}

/** The rendered file and how many exports it holds. */
export interface Scaffold {
  readonly yaml: string;
  readonly exports: number;
  /** Tables written as comments only (unreadable, nothing exportable). */
  readonly skipped: readonly string[];
}

const URL_EXAMPLES: Readonly<Record<SourceKind, string>> = {
  postgres: "postgresql://user:password@host:5432/database",
  mysql: "mysql://user:password@host:3306/database",
  mssql: "sqlserver://user:password@host:1433/database",
};

/** SQL words that an unquoted `table:` name must not be (any engine): such tables get `query:`. */
const RESERVED = new Set(
  ("all analyse analyze and any array as asc asymmetric authorization between binary both by case " +
    "cast check collate column constraint create cross current_catalog current_date current_role " +
    "current_schema current_time current_timestamp current_user default deferrable delete desc " +
    "distinct do drop else end except exists false fetch file for foreign freeze from full grant " +
    "group having ilike in index initially inner insert intersect into is isnull join key keys " +
    "lateral leading left like limit localtime localtimestamp match natural not notnull null " +
    "offset on only or order outer over overlaps percent placing primary range references " +
    "returning right rows schema select session_user similar some symmetric table tablesample " +
    "then to top trailing true union unique update user using values variadic verbose when " +
    "where window with")
    .split(" "),
);

const PLAIN = /^(?:\.{1,2}\/)*[A-Za-z_][A-Za-z0-9_./-]*$/;
const YAML_WORDS = /^(?:true|false|yes|no|on|off|null|y|n|~)$/i;

/**
 * A YAML scalar for a string: plain when unambiguous, else single-quoted when printable, else
 * JSON-quoted (a valid YAML double-quoted scalar).
 *
 * @param text The value.
 * @returns The scalar as written in the file.
 *
 * @example
 * ```ts
 * import { yamlString } from "./scaffold.ts";
 * if (yamlString("orders") !== "orders" || yamlString("yes") !== "'yes'") throw new Error();
 * if (yamlString("a\nb") !== '"a\\nb"') throw new Error();
 * ```
 */
export function yamlString(text: string): string {
  if (PLAIN.test(text) && !YAML_WORDS.test(text)) return text;
  // deno-lint-ignore no-control-regex
  if (!/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(text)) {
    return `'${text.replaceAll("'", "''")}'`;
  }
  return JSON.stringify(text);
}

/** A name as shown in a comment: no control character can end the comment line. */
function shown(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/g, "?");
}

/** Breaks a comment into lines of at most ~100 characters, each starting with `prefix`. */
function commentLines(prefix: string, text: string): string[] {
  const words = shown(text).split(" ");
  const lines: string[] = [];
  let line = prefix;
  for (const word of words) {
    if (line !== prefix && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = `${prefix.replace(/REVIEW: $/, "")}  ${word}`;
    } else {
      line += (line === prefix ? "" : " ") + word;
    }
  }
  lines.push(line);
  return lines;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

/** Whether `table:` can name the relation unquoted on this engine. */
function plainTableName(kind: SourceKind, name: string): boolean {
  const pattern = kind === "postgres" ? /^[a-z_][a-z0-9_]*$/ : /^[A-Za-z_][A-Za-z0-9_]*$/;
  return pattern.test(name) && !RESERVED.has(name.toLowerCase());
}

/** Export names: filename-safe, unique; the table name unless two schemas share it. */
function exportNames(analyses: readonly TableAnalysis[]): string[] {
  const count = new Map<string, number>();
  for (const a of analyses) count.set(a.table.name, (count.get(a.table.name) ?? 0) + 1);
  const used = new Set<string>();
  return analyses.map((a) => {
    const raw = count.get(a.table.name)! > 1 ? `${a.table.schema}_${a.table.name}` : a.table.name;
    const base = raw.replace(/[^A-Za-z0-9_-]/g, "_").replace(/^[-_]+(?=.)/, "") || "export";
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  });
}

function sourceBlock(kind: SourceKind, options: ScaffoldOptions): string[] {
  const lines = ["source:", `  type: ${kind}`];
  const c = options.connection;
  if (c.form === "url_file") {
    lines.push(
      "  # The URL is read from this file (relative to this config's folder) when rivet runs.",
      `  url_file: ${yamlString(c.path)}`,
    );
  } else {
    if (c.fromUrl) {
      lines.push(
        "  # The URL given to --source is not written here: export it before running rivet,",
        `  #   export ${c.env}='${URL_EXAMPLES[kind]}'`,
      );
    } else {
      lines.push("  # The URL is read from this environment variable when rivet runs.");
    }
    lines.push(`  url_env: ${yamlString(c.env)}`);
  }
  if (options.tls) {
    lines.push("  tls:", `    mode: ${options.tls.mode}`);
    if (options.tls.caFile !== undefined) {
      lines.push(`    ca_file: ${yamlString(options.tls.caFile)}`);
    }
  }
  return lines;
}

function destinationLines(d: ScaffoldDestination, name: string): string[] {
  switch (d.kind) {
    case "local":
      return [
        "    destination:",
        "      type: local",
        `      path: ${yamlString(`./out/${name}`)}`,
      ];
    case "s3":
      return [
        "    destination:",
        "      type: s3",
        `      bucket: ${yamlString(d.bucket)}`,
        `      prefix: ${yamlString(`${name}/`)}`,
        ...(d.region === undefined ? [] : [`      region: ${yamlString(d.region)}`]),
      ];
    case "gcs":
      return [
        "    destination:",
        "      type: gcs",
        `      bucket: ${yamlString(d.bucket)}`,
        `      prefix: ${yamlString(`${name}/`)}`,
        ...(d.credentialsFile === undefined
          ? []
          : [`      credentials_file: ${yamlString(d.credentialsFile)}`]),
      ];
    case "azure":
      return [
        "    destination:",
        "      type: azure",
        `      bucket: ${yamlString(d.container)}`,
        `      prefix: ${yamlString(`${name}/`)}`,
        `      account_name: ${yamlString(d.account)}`,
        `      # The account key is read from $${AZURE_KEY_ENV} (or use sas_token_env).`,
        `      account_key_env: ${AZURE_KEY_ENV}`,
      ];
  }
}

/** Why a table gets no export, or undefined when it gets one. */
function skipReason(a: TableAnalysis): string | undefined {
  const t = a.table;
  if (t.unreadable !== undefined) return `cannot be read (${t.unreadable})`;
  if (t.columns.length > 0 && t.unsupported.length === t.columns.length) {
    return "none of its columns can be exported";
  }
  const names = [t.schema, t.name, ...t.columns.map((c) => c.name)];
  if (names.some((n) => n.includes("${"))) {
    return "a name contains '${', which rivet reads as a placeholder: write this export by hand";
  }
  return undefined;
}

function describeTable(a: TableAnalysis): string {
  const t = a.table;
  const parts = [`${t.schema}.${t.name}: ${t.kind}`];
  if (t.rowEstimate !== undefined) {
    parts.push(`about ${t.rowEstimate.toLocaleString("en-US")} rows`);
  }
  if (t.totalBytes !== undefined) parts.push(formatBytes(t.totalBytes));
  if (a.primaryKey.length > 0) parts.push(`primary key (${a.primaryKey.join(", ")})`);
  return parts.join(", ");
}

function exportLines(
  kind: SourceKind,
  a: TableAnalysis,
  name: string,
  options: ScaffoldOptions & { readonly index: number },
): string[] {
  const t = a.table;
  const plain = t.unsupported.length === 0 && plainTableName(kind, t.schema) &&
    plainTableName(kind, t.name);
  // A change log is read whole: a table that needs a query (a column left out, a quoted name)
  // cannot be captured, and is exported whole instead.
  const s = a.suggestion.mode === "cdc" && !plain
    ? {
      ...a.suggestion,
      mode: "full" as const,
      why: "--mode cdc was given but the table cannot be captured",
      review: [
        "cdc needs a table named with letters, digits and _ whose every column rivet can type: " +
        "exported whole instead",
      ],
    }
    : a.suggestion;
  const lines = [
    ...commentLines("  # ", describeTable(a)),
    ...commentLines("  # ", `mode ${s.mode}: ${s.why}.`),
  ];
  const review = [
    ...t.unsupported.map((u) =>
      `column ${u.column} (${u.type}) is left out of the query: ${u.reason}`
    ),
    ...a.overrides.map((o) => o.review),
    ...s.review,
  ];
  for (const r of review) lines.push(...commentLines("  # REVIEW: ", r));
  lines.push(`  - name: ${yamlString(name)}`);
  if (plain) {
    lines.push(`    table: ${t.schema}.${t.name}`);
  } else {
    const d = dialectOf(kind);
    const left = new Set(t.unsupported.map((u) => u.column));
    const cols = t.unsupported.length === 0
      ? "*"
      : t.columns.filter((c) => !left.has(c.name)).map((c) => quoteIdent(d, c.name)).join(", ");
    const sql = `SELECT ${cols} FROM ${quoteIdent(d, t.schema)}.${quoteIdent(d, t.name)}`;
    lines.push(`    query: ${yamlString(sql)}`);
  }
  lines.push(`    mode: ${s.mode}`);
  switch (s.mode) {
    case "chunked":
      lines.push(
        `    chunk_column: ${yamlString(s.chunkColumn!)}`,
        `    chunk_size: ${SCAFFOLD_CHUNK_SIZE}`,
        "    chunk_checkpoint: true",
        `    parallel: ${s.parallel ?? 1}`,
      );
      break;
    case "incremental":
      lines.push(`    cursor_column: ${yamlString(s.cursorColumn!)}`);
      if (s.fallbackColumn !== undefined) {
        lines.push(
          `    # ${shown(s.cursorColumn!)} may be NULL: such rows follow ${
            shown(s.fallbackColumn)
          }.`,
          "    incremental_cursor_mode: coalesce",
          `    cursor_fallback_column: ${yamlString(s.fallbackColumn)}`,
        );
      }
      break;
    case "time_window":
      lines.push(`    time_column: ${yamlString(s.cursorColumn!)}`, "    days_window: 7");
      break;
    case "full":
      break;
    case "cdc":
      lines.push(
        "    cdc:",
        "      until_current: true",
        ...cdcLines(kind, t, name, options.index),
      );
      break;
  }
  lines.push("    format: parquet", ...destinationLines(options.destination, name));
  if (a.overrides.length > 0) {
    lines.push("    columns:");
    for (const o of a.overrides) lines.push(`      ${yamlString(o.column)}: ${yamlString(o.type)}`);
  }
  if (s.mode !== "cdc") {
    lines.push(
      "    # Optional: add _rivet_exported_at and _rivet_row_hash to every row.",
      "    # meta_columns: {exported_at: true, row_hash: true}",
    );
  }
  return lines;
}

/**
 * The engine's key of a scaffolded cdc export, unique per export (two exports may not share a
 * slot or a server id): PostgreSQL a slot named after the export, MySQL a server id counted up
 * from the default, SQL Server the capture instance `sp_cdc_enable_table` names by default.
 */
function cdcLines(
  kind: SourceKind,
  t: TableAnalysis["table"],
  name: string,
  index: number,
): string[] {
  const lines = [`      checkpoint: ${yamlString(`./cdc/${name}.ckpt`)}`];
  if (kind === "postgres") {
    const slot = `rivet_${name}`.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 63);
    lines.push(`      slot: ${yamlString(slot)}`);
  } else if (kind === "mysql") {
    lines.push(`      server_id: ${CDC_DEFAULTS.serverId + index}`);
  } else {
    const instance = `${t.schema}_${t.name}`.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 63);
    lines.push(`      capture_instance: ${yamlString(instance)}`);
  }
  return lines;
}

/**
 * Renders the scaffold.
 *
 * @param inventory What was inventoried (engine, host, database).
 * @param analyses One analysis per table, sorted by schema and name.
 * @param options Connection form, destination, TLS block.
 * @returns The YAML text, the number of exports and the tables left out.
 */
export function renderScaffold(
  inventory: Inventory,
  analyses: readonly TableAnalysis[],
  options: ScaffoldOptions,
): Scaffold {
  const kind = inventory.kind;
  const where = `${kind} ${inventory.host}/${inventory.database}` +
    (options.schema === undefined ? "" : ` (schema ${options.schema})`);
  const lines = [
    ...commentLines("# ", `rivet config scaffolded by \`rivet init\` from ${where}.`),
    "# Each export says why it got its mode; lines marked REVIEW need a decision from you.",
    "# Next: rivet doctor -c <this file>, rivet check -c <this file>, rivet run -c <this file>.",
    ...sourceBlock(kind, options),
    "",
    "exports:",
  ];
  const names = exportNames(analyses);
  const skipped: string[] = [];
  let exports = 0;
  analyses.forEach((a, i) => {
    const skip = skipReason(a);
    if (skip !== undefined) {
      skipped.push(`${a.table.schema}.${a.table.name}`);
      lines.push(
        ...commentLines("  # REVIEW: ", `${a.table.schema}.${a.table.name} has no export: ${skip}`),
        "",
      );
      return;
    }
    exports++;
    if (options.destination.kind === "local" && exports === 1) {
      lines.push("  # Local paths are relative to the folder rivet runs in.");
    }
    lines.push(...exportLines(kind, a, names[i]!, { ...options, index: i }), "");
  });
  return { yaml: lines.join("\n").replace(/\n+$/, "") + "\n", exports, skipped };
}
