/**
 * Test support (TDS test server): SQL Server column types. Parses a declared type
 * (`datetime2(7)`, `nvarchar(max)`, `decimal(18,4)`), maps it to the PostgreSQL type that stores
 * it, picks a type for a computed PostgreSQL column, and writes TYPE_INFO and values exactly as
 * SQL Server puts them on the wire, from PostgreSQL's text output of the stored value.
 *
 * @module
 */
import type { Writer } from "./wire.ts";

/** A SQL Server type as declared. `length` is in characters or bytes, -1 for `max`. */
export interface SqlType {
  readonly name: string;
  readonly length?: number;
  readonly precision?: number;
  readonly scale?: number;
}

const SIZED = new Set(["char", "varchar", "nchar", "nvarchar", "binary", "varbinary"]);
const SCALED = new Set(["time", "datetime2", "datetimeoffset"]);

/** Parses `name`, `name(n)`, `name(max)`, `name(p,s)`; undefined for an unknown type name. */
export function parseType(text: string): SqlType | undefined {
  const m = /^\s*(\w+)\s*(?:\(\s*(\w+)\s*(?:,\s*(\d+)\s*)?\))?\s*$/.exec(text.toLowerCase());
  if (!m) return undefined;
  let name = m[1]!;
  if (name === "sysname") return { name: "nvarchar", length: 128 };
  if (name === "rowversion") name = "binary";
  if (!STORAGE[name]) return undefined;
  const a = m[2];
  const b = m[3];
  if (SIZED.has(name)) {
    return { name, length: a === "max" ? -1 : a === undefined ? 1 : Number(a) };
  }
  if (SCALED.has(name)) return { name, scale: a === undefined ? 7 : Number(a) };
  if (name === "decimal" || name === "numeric") {
    return {
      name,
      precision: a === undefined ? 18 : Number(a),
      scale: b === undefined ? 0 : Number(b),
    };
  }
  if (name === "float") return { name: Number(a ?? 53) <= 24 ? "real" : "float" };
  return { name };
}

/** The declared form, as SQL Server spells it (`nvarchar(max)`). */
export function typeText(t: SqlType): string {
  if (t.length !== undefined) return `${t.name}(${t.length === -1 ? "max" : t.length})`;
  if (t.precision !== undefined) return `${t.name}(${t.precision},${t.scale})`;
  if (t.scale !== undefined) return `${t.name}(${t.scale})`;
  return t.name;
}

const STORAGE: Record<string, (t: SqlType) => string> = {
  bit: () => "boolean",
  tinyint: () => "smallint",
  smallint: () => "smallint",
  int: () => "integer",
  bigint: () => "bigint",
  decimal: (t) => `numeric(${t.precision},${t.scale})`,
  numeric: (t) => `numeric(${t.precision},${t.scale})`,
  money: () => "numeric(19,4)",
  smallmoney: () => "numeric(10,4)",
  real: () => "real",
  float: () => "double precision",
  date: () => "date",
  // Values are moved onto SQL Server's 1/300-s grid by a trigger (`sys._datetime_grid`), so
  // comparisons here see the value SQL Server stores (.003 is stored as 0.00333…).
  datetime: () => "timestamp(6)",
  smalldatetime: () => "timestamp(0)",
  datetime2: (t) => (t.scale! <= 6 ? `timestamp(${t.scale})` : "text"),
  time: (t) => (t.scale! <= 6 ? `time(${t.scale})` : "text"),
  datetimeoffset: () => "text",
  char: (t) => (t.length === -1 ? "text" : `character(${t.length})`),
  nchar: (t) => (t.length === -1 ? "text" : `character(${t.length})`),
  varchar: (t) => (t.length === -1 ? "text" : `varchar(${t.length})`),
  nvarchar: (t) => (t.length === -1 ? "text" : `varchar(${t.length})`),
  text: () => "text",
  ntext: () => "text",
  xml: () => "text",
  binary: () => "bytea",
  varbinary: () => "bytea",
  image: () => "bytea",
  uniqueidentifier: () => "uuid",
  sql_variant: () => "text",
  geography: () => "bytea",
  geometry: () => "bytea",
  hierarchyid: () => "bytea",
};

/**
 * The PostgreSQL column type that stores a declared type; `column` (quoted) gets the range check
 * tinyint needs, since PostgreSQL has no unsigned byte.
 */
export function storageType(t: SqlType, column: string): string {
  const storage = STORAGE[t.name]!(t);
  return t.name === "tinyint" ? `${storage} CHECK (${column} BETWEEN 0 AND 255)` : storage;
}

/**
 * The SQL Server type of a computed column from its PostgreSQL type OID. `numericScale` is the
 * scale seen in the first values (numeric has no declared scale in a computed column).
 */
export function computedType(oid: number, numericScale: number): SqlType {
  switch (oid) {
    case 20:
      return { name: "bigint" };
    case 23:
    case 26:
      return { name: "int" };
    case 21:
      return { name: "smallint" };
    case 1700:
      return { name: "decimal", precision: 38, scale: numericScale };
    case 16:
      return { name: "bit" };
    case 701:
      return { name: "float" };
    case 700:
      return { name: "real" };
    case 1114:
      return { name: "datetime2", scale: 6 };
    case 1184:
      return { name: "datetimeoffset", scale: 6 };
    case 1082:
      return { name: "date" };
    case 1083:
      return { name: "time", scale: 6 };
    case 17:
      return { name: "varbinary", length: -1 };
    case 2950:
      return { name: "uniqueidentifier" };
    default:
      return { name: "nvarchar", length: -1 };
  }
}

// --- TYPE_INFO ------------------------------------------------------------------------------

/** Latin1_General_CI_AS: LCID 0x0409 (code page 1252), ignore case/kana/width, sort id 0. */
export const COLLATION = new Uint8Array([0x09, 0x04, 0xd0, 0x00, 0x00]);

const UDT_CLASSES: Record<string, string> = {
  geography: "Microsoft.SqlServer.Types.SqlGeography",
  geometry: "Microsoft.SqlServer.Types.SqlGeometry",
  hierarchyid: "Microsoft.SqlServer.Types.SqlHierarchyId",
};

const FIXED_LEN: Record<string, [number, number]> = {
  bit: [0x68, 1],
  tinyint: [0x26, 1],
  smallint: [0x26, 2],
  int: [0x26, 4],
  bigint: [0x26, 8],
  real: [0x6d, 4],
  float: [0x6d, 8],
  money: [0x6e, 8],
  smallmoney: [0x6e, 4],
  datetime: [0x6f, 8],
  smalldatetime: [0x6f, 4],
  uniqueidentifier: [0x24, 16],
};

/** Bytes of a decimal value by precision. */
export function decimalLength(precision: number): number {
  return precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17;
}

/** Whether values of this type go out as PLP (partially length-prefixed) streams. */
export function isPlp(t: SqlType): boolean {
  return t.length === -1 || t.name === "xml" || t.name in UDT_CLASSES;
}

/**
 * TYPE_INFO of a COLMETADATA column; `table` names the table for TEXT/NTEXT/IMAGE, which carry
 * it there.
 */
export function writeTypeInfo(w: Writer, t: SqlType, database: string, table: string[]): void {
  const fixed = FIXED_LEN[t.name];
  if (fixed) {
    w.u8(fixed[0]).u8(fixed[1]);
    return;
  }
  const maxLen = (n: number, perChar: number) => (n === -1 ? 0xffff : n * perChar);
  switch (t.name) {
    case "decimal":
    case "numeric":
      w.u8(t.name === "decimal" ? 0x6a : 0x6c).u8(decimalLength(t.precision!)).u8(t.precision!)
        .u8(t.scale!);
      return;
    case "date":
      w.u8(0x28);
      return;
    case "time":
      w.u8(0x29).u8(t.scale!);
      return;
    case "datetime2":
      w.u8(0x2a).u8(t.scale!);
      return;
    case "datetimeoffset":
      w.u8(0x2b).u8(t.scale!);
      return;
    case "char":
    case "varchar":
      w.u8(t.name === "char" ? 0xaf : 0xa7).u16(maxLen(t.length!, 1)).bytes(COLLATION);
      return;
    case "nchar":
    case "nvarchar":
      w.u8(t.name === "nchar" ? 0xef : 0xe7).u16(maxLen(t.length!, 2)).bytes(COLLATION);
      return;
    case "binary":
    case "varbinary":
      w.u8(t.name === "binary" ? 0xad : 0xa5).u16(maxLen(t.length!, 1));
      return;
    case "text":
    case "ntext":
    case "image":
      w.u8(t.name === "text" ? 0x23 : t.name === "ntext" ? 0x63 : 0x22);
      w.u32(t.name === "ntext" ? 0x7ffffffe : 0x7fffffff);
      if (t.name !== "image") w.bytes(COLLATION);
      w.u8(table.length);
      for (const part of table) w.usvarchar(part);
      return;
    case "xml":
      w.u8(0xf1).u8(0);
      return;
    case "sql_variant":
      w.u8(0x62).u32(8016);
      return;
    default: {
      const cls = UDT_CLASSES[t.name];
      if (!cls) throw new Error(`no TYPE_INFO for ${t.name}`);
      w.u8(0xf0).u16(0xffff).bvarchar(database).bvarchar("sys").bvarchar(t.name);
      w.usvarchar(
        `${cls}, Microsoft.SqlServer.Types, Version=16.0.0.0, Culture=neutral, ` +
          "PublicKeyToken=89845dcd8080cc91",
      );
    }
  }
}
