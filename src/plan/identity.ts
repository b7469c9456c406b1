/**
 * The identity of an export's data: which database it reads (source kind, host, port, database)
 * and what it reads there (its base query, `table:` rendered as `SELECT *`, with whitespace
 * runs folded) and by which cursor column. A cursor is stored under its export's name *and* this
 * identity, so two configs in one folder that reuse an export name never share a cursor, and a
 * changed source or query stops at a clear error instead of resuming from a position that belongs
 * to other data. The config file's path is not part of it: moving or renaming the file keeps the
 * cursors. The user and password are not either: a rotated login reads the same data.
 *
 * Layer: plan.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ConnectionInfo } from "../core/source.ts";
import type { SourceKind } from "../core/spec.ts";

/** Hex characters kept of the SHA-256: 64 bits, shown whole in messages and `state show`. */
const IDENTITY_CHARS = 16;

/**
 * The identity of an export's data.
 *
 * @param facts The source kind, resolved connection, base query and cursor column.
 * @returns 16 lowercase hex characters.
 *
 * @example
 * ```ts
 * import { exportIdentity } from "./identity.ts";
 * const connection = { host: "DB", port: 5432, user: "u", database: "app", params: {} };
 * const rotated = { ...connection, host: "db", user: "other" };
 * const a = exportIdentity({ kind: "postgres", connection, baseSql: "SELECT *  FROM t" });
 * const b = exportIdentity({ kind: "postgres", connection: rotated, baseSql: "SELECT * FROM t" });
 * if (a !== b || a.length !== 16) throw new Error("same data, same identity");
 * ```
 */
export function exportIdentity(facts: {
  readonly kind: SourceKind;
  readonly connection: Pick<ConnectionInfo, "host" | "port" | "database">;
  readonly baseSql: string;
  readonly cursorColumn?: string;
}): string {
  const { kind, connection, baseSql, cursorColumn } = facts;
  const canonical = JSON.stringify([
    "rivet-export-identity-1",
    kind,
    connection.host.toLowerCase(),
    connection.port,
    connection.database,
    baseSql.trim().replace(/\s+/g, " "),
    cursorColumn ?? null,
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, IDENTITY_CHARS);
}
