/**
 * Test support (TDS test server): the small T-SQL → PostgreSQL translation. Each statement of a
 * batch becomes a plan: a `SET`/`WAITFOR`/`KILL`/transaction statement the server handles
 * itself, or PostgreSQL text (with `CREATE TABLE` mapping every declared SQL Server type to its
 * storage type and recording the declared type as a column comment `mssql:<type>`).
 *
 * Covered: `[x]` and `"x"` identifiers, `N'…'`, `0x…`, `TOP (n)`, `CAST`/`CONVERT` with SQL Server
 * type names, `COUNT_BIG`, `ISNULL`, `LEN`, `DATALENGTH`, `GETDATE()` and friends, `DATEADD`,
 * `DATEDIFF`, `HASHBYTES('MD5', …)`, `IIF`, `CHARINDEX`, `NEWID()`, table hints, `OPTION (…)`,
 * `@@VERSION`, `@@SPID`, `@param` → `$n`, `SELECT … INTO`, `EXEC proc @a = v` and the CDC
 * change function (`cdc.ts`). Anything else passes through.
 *
 * @module
 */
import {
  isOp,
  isWord,
  type Node,
  solid,
  splitCommas,
  splitStatements,
  type Tok,
  tokenize,
  tree,
} from "./tsql_tokens.ts";
import { parseType, type SqlType, storageType, typeText } from "./types.ts";
import { clockOfTicks, parseMoment } from "./values.ts";
import { allChangesFrom } from "./cdc.ts";

/** What the server does for one statement. */
export type Plan =
  | { readonly kind: "set"; readonly option: string; readonly value: string }
  | { readonly kind: "waitfor"; readonly seconds: number }
  | { readonly kind: "kill"; readonly session: number }
  | { readonly kind: "use"; readonly database: string }
  | { readonly kind: "begin" | "commit" | "rollback" }
  | {
    readonly kind: "sql";
    /** PostgreSQL statements run in order; the last one's result is the statement's result. */
    readonly sql: readonly string[];
    /** `SELECT … INTO target`: the SELECT to describe, so declared types carry over. */
    readonly into?: { readonly target: string; readonly select: string };
    /** The original T-SQL text, for `sessions()` and error messages. */
    readonly text: string;
  };

/** What a translation needs to know about its session. */
export interface TranslateContext {
  readonly spid: number;
  /** The session's `SET LOCK_TIMEOUT` in ms (-1 = wait forever), for `@@LOCK_TIMEOUT`. */
  readonly lockTimeoutMs?: number;
  /** RPC parameter names (lowercase, with `@`) to their PostgreSQL text (`$1::bigint`). */
  readonly params?: ReadonlyMap<string, string>;
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The PostgreSQL text of each parameter of an sp_executesql call, keyed by lowercase name: its
 * value as a literal cast to the declared type (`@id bigint` → `CAST('5' AS bigint)`), or left
 * untyped for the types stored as canonical text, so comparisons with their columns work.
 * Values are inlined (quotes doubled) rather than bound, so PostgreSQL parses every value from
 * the same text SQL Server would have received.
 */
export function parameterTexts(
  declaration: string,
  values: readonly (string | Uint8Array | null)[],
): Map<string, string> {
  const out = new Map<string, string>();
  const parts = splitCommas(tree(tokenize(declaration))).map(solid).filter((p) => p.length > 0);
  parts.forEach((p, i) => {
    const name = (p[0] as Tok).text.toLowerCase();
    const t = typeOf(p.slice(1).filter((n) => !isWord(n, "OUTPUT", "OUT")));
    const v = values[i] ?? null;
    const value = v === null
      ? "NULL"
      : typeof v === "string"
      ? lit(v)
      : `'\\x${Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("")}'`;
    if (!t) out.set(name, value);
    else if (/char|text|xml/.test(t.name)) out.set(name, `CAST(${value} AS text)`);
    else if (storageType(t, "") === "text") out.set(name, value);
    else out.set(name, `CAST(${value} AS ${castType(t)})`);
  });
  return out;
}

/** Translates a T-SQL batch into plans, one per statement. Throws SyntaxError for bad input. */
export function translateBatch(text: string, ctx: TranslateContext): Plan[] {
  return splitStatements(tree(tokenize(text))).map((s) => translateStatement(s, ctx));
}

function statementText(nodes: readonly Node[]): string {
  return nodes.map(nodeText).join("").trim();
}

function nodeText(n: Node): string {
  if (n.kind === "group") return `(${n.items.map(nodeText).join("")})`;
  if (n.kind === "str") return (n.national ? "N" : "") + lit(n.text);
  if (n.kind === "qident") return `[${n.text.replaceAll("]", "]]")}]`;
  if (n.kind === "hex") return `0x${n.text}`;
  return n.text;
}

function translateStatement(nodes: Node[], ctx: TranslateContext): Plan {
  const s = solid(nodes);
  const first = (s[0] as Tok).text.toUpperCase();
  const text = statementText(nodes);
  if (first === "SET") {
    if (s[1]?.kind === "var") throw new SyntaxError("SET of a variable is not supported");
    const words = s.slice(1).map((n) => (n.kind === "group" ? "" : n.text.toUpperCase()));
    if (words[0] === "TRANSACTION") {
      return { kind: "set", option: "isolation", value: words.slice(3).join(" ") };
    }
    return { kind: "set", option: words[0] ?? "", value: words.slice(1).join(" ") };
  }
  if (first === "WAITFOR") {
    const arg = s[2];
    if (!isWord(s[1], "DELAY") || arg?.kind !== "str") {
      throw new SyntaxError(`Incorrect syntax near '${nodeText(s[1] ?? s[0]!)}'.`);
    }
    const [h, m, sec] = arg.text.split(":").map(Number);
    return { kind: "waitfor", seconds: (h ?? 0) * 3600 + (m ?? 0) * 60 + (sec ?? 0) };
  }
  if (first === "KILL") return { kind: "kill", session: Number((s[1] as Tok).text) };
  if (first === "USE") return { kind: "use", database: (s[1] as Tok).text };
  if (first === "BEGIN" && isWord(s[1], "TRAN", "TRANSACTION")) return { kind: "begin" };
  if (first === "COMMIT") return { kind: "commit" };
  if (first === "ROLLBACK") return { kind: "rollback" };
  if (first === "CREATE" && isWord(s[1], "TABLE")) return createTable(nodes, ctx, text);
  if (first === "EXEC" || first === "EXECUTE") return execProcedure(nodes, ctx, text);
  if (first === "SELECT") {
    const into = s.findIndex((n) => isWord(n, "INTO"));
    if (into > 0) {
      const at = nodes.indexOf(s[into]!);
      let end = at + 1;
      while (
        end < nodes.length && (nodes[end]!.kind === "ws" || nodes[end]!.kind === "word" ||
          nodes[end]!.kind === "qident" || isOp(nodes[end], ".")) &&
        !isWord(nodes[end], "FROM")
      ) {
        end++;
      }
      const target = rewrite(nodes.slice(at + 1, end), ctx).trim();
      const select = rewrite([
        ...nodes.slice(0, at),
        { kind: "ws", text: " " },
        ...nodes.slice(end),
      ], ctx);
      return {
        kind: "sql",
        sql: [`CREATE TABLE ${target} AS ${select}`],
        into: { target, select },
        text,
      };
    }
  }
  return { kind: "sql", sql: [rewrite(nodes, ctx)], text };
}

/** The SQL Server type named by nodes such as `nvarchar`, `(`, `max`, `)`. */
function typeOf(nodes: readonly Node[]): SqlType | undefined {
  return parseType(
    solid(nodes).map((n) => (n.kind === "group" ? nodeText(n) : (n as Tok).text)).join(""),
  );
}

/** PostgreSQL type for a CAST/CONVERT target. */
function castType(t: SqlType): string {
  switch (t.name) {
    case "datetime2":
      return `timestamp(${Math.min(t.scale!, 6)})`;
    case "time":
      return `time(${Math.min(t.scale!, 6)})`;
    case "datetimeoffset":
      return "timestamptz";
    case "sql_variant":
      return "text";
    case "tinyint":
      return "smallint";
    default:
      return storageType(t, "");
  }
}

/** Canonical fixed-width text of a datetime2(7)/time(7)/datetimeoffset literal, as stored. */
export function canonicalLiteral(t: SqlType, s: string): string | undefined {
  const pad = (n: number) => String(n).padStart(2, "0");
  if (t.name === "time" && t.scale! > 6) {
    return canonicalLiteral({ name: "datetime2", scale: 7 }, `0001-01-01 ${s}`)?.slice(11);
  }
  if (!((t.name === "datetime2" && t.scale! > 6) || t.name === "datetimeoffset")) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s.trim());
  if (!m) return undefined;
  const moment = parseMoment(s);
  const date = `${m[1]}-${m[2]}-${m[3]}`;
  if (t.name === "datetime2") return `${date} ${clockOfTicks(moment.ticks)}`;
  const off = moment.offset ?? 0;
  const sign = off < 0 ? "-" : "+";
  return `${date} ${clockOfTicks(moment.ticks)} ${sign}${pad(Math.floor(Math.abs(off) / 60))}:${
    pad(Math.abs(off) % 60)
  }`;
}

const HINTS = new Set([
  "NOLOCK",
  "READUNCOMMITTED",
  "READCOMMITTED",
  "REPEATABLEREAD",
  "SERIALIZABLE",
  "SNAPSHOT",
  "HOLDLOCK",
  "UPDLOCK",
  "ROWLOCK",
  "PAGLOCK",
  "TABLOCK",
  "READPAST",
  "NOWAIT",
  "INDEX",
  "FORCESEEK",
]);

const NOW: Record<string, string> = {
  GETDATE: "localtimestamp",
  SYSDATETIME: "localtimestamp",
  CURRENT_TIMESTAMP: "localtimestamp",
  GETUTCDATE: "(now() at time zone 'utc')",
  SYSUTCDATETIME: "(now() at time zone 'utc')",
  SYSDATETIMEOFFSET: "now()",
  NEWID: "gen_random_uuid()",
  USER_NAME: "current_user",
  SUSER_NAME: "current_user",
  SUSER_SNAME: "current_user",
};

const SECONDS: Record<string, number> = {
  SECOND: 1,
  SS: 1,
  S: 1,
  MINUTE: 60,
  MI: 60,
  N: 60,
  HOUR: 3600,
  HH: 3600,
  DAY: 86400,
  DD: 86400,
  D: 86400,
};

/** Rewrites a node list (one nesting level and, recursively, its groups) to PostgreSQL text. */
export function rewrite(nodes: readonly Node[], ctx: TranslateContext): string {
  let out = "";
  let limit: string | undefined;
  const next = (i: number) => {
    let j = i + 1;
    while (nodes[j]?.kind === "ws") j++;
    return j;
  };
  const args = (g: Node) =>
    splitCommas((g as { items: Node[] }).items).map((a) => rewrite(a, ctx).trim());
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    if (n.kind === "group") {
      out += `(${rewrite(n.items, ctx)})`;
      continue;
    }
    if (n.kind === "qident") {
      out += q(n.text);
      continue;
    }
    if (n.kind === "str") {
      out += lit(n.text);
      continue;
    }
    if (n.kind === "hex") {
      out += `'\\x${n.text}'::bytea`;
      continue;
    }
    if (n.kind === "var") {
      const v = n.text.toLowerCase();
      if (v === "@@version") out += "mssql_version()";
      else if (v === "@@spid") out += String(ctx.spid);
      else if (v === "@@trancount") out += "0";
      else if (v === "@@lock_timeout") out += String(ctx.lockTimeoutMs ?? -1);
      else {
        const at = ctx.params?.get(v);
        if (at === undefined) {
          throw new SyntaxError(`Must declare the scalar variable "${n.text}".`);
        }
        out += at;
      }
      continue;
    }
    if (n.kind !== "word") {
      out += n.text;
      continue;
    }
    const word = n.text.toUpperCase();
    const j = next(i);
    const call = nodes[j]?.kind === "group"
      ? nodes[j] as { kind: "group"; items: Node[] }
      : undefined;
    if (word === "TOP") {
      const arg = nodes[j]!;
      limit = arg.kind === "group" ? rewrite(arg.items, ctx) : rewrite([arg], ctx);
      i = j;
      continue;
    }
    if (
      word === "WITH" && call &&
      solid(call.items).every((h) =>
        h.kind !== "word" || HINTS.has(h.text.toUpperCase()) || isOp(h, ",")
      )
    ) {
      i = j;
      continue;
    }
    if (word === "OPTION" && call) {
      i = j;
      continue;
    }
    if (word === "COLLATE") {
      i = j; // and the collation name
      continue;
    }
    if (NOW[word] && (call || word === "CURRENT_TIMESTAMP")) {
      out += NOW[word];
      if (call) i = j;
      continue;
    }
    if (!call) {
      out += n.text;
      continue;
    }
    const a = () => args(call);
    const changesOf = /^fn_cdc_get_all_changes_(\w+)$/i.exec(n.text);
    if (changesOf && out.endsWith("cdc.")) {
      out = out.slice(0, -4) + allChangesFrom(changesOf[1]!, a());
      i = j;
      continue;
    }
    switch (word) {
      case "CAST":
      case "TRY_CAST": {
        const items = call.items;
        const asAt = items.findLastIndex((x) => isWord(x, "AS"));
        const t = typeOf(items.slice(asAt + 1));
        const expr = items.slice(0, asAt);
        const only = solid(expr);
        if (t && only.length === 1 && only[0]!.kind === "str") {
          const canon = canonicalLiteral(t, (only[0] as Tok).text);
          if (canon !== undefined) {
            out += lit(canon);
            i = j;
            continue;
          }
        }
        out += `CAST(${rewrite(expr, ctx)} AS ${
          t ? castType(t) : rewrite(items.slice(asAt + 1), ctx)
        })`;
        i = j;
        continue;
      }
      case "CONVERT": {
        const parts = splitCommas(call.items);
        const t = typeOf(parts[0]!);
        const expr = rewrite(parts[1]!, ctx);
        const style = parts[2] ? rewrite(parts[2], ctx).trim() : undefined;
        if (style === "2" && t && /char/.test(t.name)) out += `upper(encode(${expr}, 'hex'))`;
        else out += `CAST(${expr} AS ${t ? castType(t) : rewrite(parts[0]!, ctx)})`;
        i = j;
        continue;
      }
      case "COUNT_BIG":
        out += `count(${rewrite(call.items, ctx)})`;
        break;
      case "COUNT": // int in SQL Server, bigint in PostgreSQL
        out += `CAST(count(${rewrite(call.items, ctx)}) AS integer)`;
        break;
      case "REPLICATE":
        out += `repeat(${a().join(", ")})`;
        break;
      case "ISNULL":
        out += `COALESCE(${a().join(", ")})`;
        break;
      case "LEN":
        out += `length(rtrim(${a()[0]}))`;
        break;
      case "DATALENGTH":
        out += `octet_length(${a()[0]})`;
        break;
      case "CHARINDEX": {
        const [needle, hay] = a();
        out += `strpos(${hay}, ${needle})`;
        break;
      }
      case "IIF": {
        const [c, x, y] = a();
        out += `(CASE WHEN ${c} THEN ${x} ELSE ${y} END)`;
        break;
      }
      case "HASHBYTES": {
        const [algo, x] = a();
        out += `decode(${algo!.toLowerCase() === "'md5'" ? "md5" : "sha256"}(${x}${
          algo!.toLowerCase() === "'md5'" ? "" : "::bytea"
        })${algo!.toLowerCase() === "'md5'" ? ", 'hex'" : ""})`;
        break;
      }
      case "DATEADD": {
        const [unit, k, x] = a();
        out += `(${x} + (${k}) * interval '1 ${unitName(unit!)}')`;
        break;
      }
      case "DATEDIFF":
      case "DATEDIFF_BIG": {
        const [unit, from, to] = a();
        const secs = SECONDS[unit!.toUpperCase()];
        if (secs === 86400) out += `((${to})::date - (${from})::date)`;
        else if (secs !== undefined) {
          out +=
            `CAST(floor(extract(epoch from ((${to})::timestamp - (${from})::timestamp)) / ${secs}) AS ${
              word === "DATEDIFF" ? "integer" : "bigint"
            })`;
        } else throw new SyntaxError(`DATEDIFF unit ${unit} is not supported`);
        break;
      }
      default:
        out += `${n.text}(${rewrite(call.items, ctx)})`;
    }
    i = j;
  }
  if (limit !== undefined) out = `${out.trimEnd()} LIMIT ${limit}`;
  return out;
}

function unitName(unit: string): string {
  const s = SECONDS[unit.toUpperCase()];
  if (s === 1) return "second";
  if (s === 60) return "minute";
  if (s === 3600) return "hour";
  if (s === 86400) return "day";
  const u = unit.toUpperCase();
  if (u === "MONTH" || u === "MM" || u === "M") return "month";
  if (u === "YEAR" || u === "YY" || u === "YYYY") return "year";
  if (u === "WEEK" || u === "WK" || u === "WW") return "week";
  if (u === "MILLISECOND" || u === "MS") return "millisecond";
  throw new SyntaxError(`DATEADD unit ${unit} is not supported`);
}

/**
 * `EXEC schema.procedure @a = value, …` → `SELECT schema.procedure(a => value, …)`: the
 * procedures the server knows are PostgreSQL functions with the same parameter names.
 */
function execProcedure(nodes: Node[], ctx: TranslateContext, text: string): Plan {
  const s = solid(nodes);
  let k = 1;
  while (s[k] && (s[k]!.kind === "word" || s[k]!.kind === "qident" || isOp(s[k], "."))) k++;
  const name = rewrite(s.slice(1, k), ctx);
  const rest = k < s.length ? nodes.slice(nodes.indexOf(s[k]!)) : [];
  const args = splitCommas(rest).map(solid).filter((a) => a.length > 0).map((a) => {
    if (a[0]!.kind !== "var" || !isOp(a[1], "=")) {
      throw new SyntaxError(`EXEC ${name}: only @name = value arguments are supported`);
    }
    return `${a[0]!.text.slice(1).toLowerCase()} => ${rewrite(a.slice(2), ctx).trim()}`;
  });
  return { kind: "sql", sql: [`SELECT ${name}(${args.join(", ")})`], text };
}

/**
 * `CREATE TABLE name (…)`: columns get their storage types and a comment with the declared type;
 * `IDENTITY`, `CLUSTERED`, `ASC`/`DESC` in key lists and `COLLATE` are mapped or dropped.
 */
function createTable(nodes: Node[], ctx: TranslateContext, text: string): Plan {
  const s = solid(nodes);
  const groupAt = s.findIndex((n) => n.kind === "group");
  if (groupAt < 0) throw new SyntaxError("Incorrect syntax near 'TABLE'.");
  const table = rewrite(s.slice(2, groupAt).flatMap((n) => [n]), ctx).trim();
  const defs = splitCommas((s[groupAt] as { items: Node[] }).items).map(solid);
  const columns: string[] = [];
  const comments: string[] = [];
  const gridded: string[] = [];
  for (const def of defs) {
    if (def.length === 0) continue;
    const head = def[0] as Tok;
    const name = head.kind === "qident" ? head.text : head.text.toLowerCase();
    if (isWord(head, "CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "INDEX")) {
      columns.push(constraintText(def, ctx));
      continue;
    }
    let k = 2;
    if (def[2]?.kind === "group") k = 3;
    const t = typeOf(def.slice(1, k));
    if (!t) {
      throw new SyntaxError(
        `Column, parameter, or variable #${columns.length + 1}: Cannot find data type ${
          nodeText(def[1]!)
        }.`,
      );
    }
    const rest: Node[] = [];
    for (let i = k; i < def.length; i++) {
      const n = def[i]!;
      if (isWord(n, "IDENTITY")) {
        rest.push({ kind: "word", text: "GENERATED BY DEFAULT AS IDENTITY" });
        if (def[i + 1]?.kind === "group") i++;
      } else if (isWord(n, "CLUSTERED", "NONCLUSTERED")) continue;
      else if (isWord(n, "COLLATE")) i++;
      else rest.push(n);
      rest.push({ kind: "ws", text: " " });
    }
    columns.push(`${q(name)} ${storageType(t, q(name))} ${rewrite(rest, ctx)}`.trimEnd());
    comments.push(`COMMENT ON COLUMN ${table}.${q(name)} IS ${lit(`mssql:${typeText(t)}`)}`);
    if (t.name === "datetime") gridded.push(name);
  }
  const grid = gridded.length === 0 ? [] : datetimeGridTrigger(table, gridded);
  return {
    kind: "sql",
    sql: [`CREATE TABLE ${table} (${columns.join(", ")})`, ...comments, ...grid],
    text,
  };
}

let gridTriggers = 0;

/** A trigger that stores `datetime` columns on SQL Server's 1/300-second grid. */
function datetimeGridTrigger(table: string, names: readonly string[]): string[] {
  const fn = `sys.${q(`_datetime_grid_${++gridTriggers}_${Date.now()}`)}`;
  const sets = names.map((n) => `NEW.${q(n)} := sys._datetime_grid(NEW.${q(n)});`).join(" ");
  return [
    `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $grid$ BEGIN ${sets} ` +
    "RETURN NEW; END $grid$",
    `CREATE TRIGGER datetime_grid BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW ` +
    `EXECUTE FUNCTION ${fn}()`,
  ];
}

function constraintText(def: Node[], ctx: TranslateContext): string {
  const kept = def.filter((n) => !isWord(n, "CLUSTERED", "NONCLUSTERED")).map((n) =>
    n.kind === "group" && !isWord(def[0], "CHECK")
      ? `(${
        splitCommas(n.items).map((c) =>
          rewrite(solid(c).filter((x) => !isWord(x, "ASC", "DESC")), ctx)
        ).join(", ")
      })`
      : rewrite([n], ctx)
  );
  return kept.join(" ");
}
