/**
 * Pooler and proxy detection, shared by the sources: what answers a connection (the database
 * itself, a connection pooler, a proxy that may send one connection's statements to different
 * server sessions), judged from what each source asks right after its login, and one warning
 * per kind.
 *
 * The probe costs one round trip on a direct connection: the session id the server gave at
 * login (PostgreSQL's BackendKeyData pid, MySQL's handshake connection id) is compared with the
 * one a statement reports. A pooler answers the login itself, so the two differ; only then is a
 * second statement sent, and a session id that changes between two statements of one
 * connection means statements are spread over server sessions (transaction pooling,
 * multiplexing). SQL Server's login says nothing of its session, so its existing login probe
 * reads `@@SPID` and one more statement reads it again.
 *
 * Layer: sources (shared, pure).
 *
 * @module
 */
import type { Warning } from "../core/spec.ts";

/** What answered a PostgreSQL connection. */
export type PostgresFrontKind = "direct" | "pooler" | "transaction_pooler";

/**
 * Classifies a PostgreSQL connection.
 *
 * @param probe The pid announced at login (BackendKeyData), then `pg_backend_pid()` of one or
 *   two statements.
 * @returns `transaction_pooler` when the two statements saw different backends, `pooler` when
 *   the backend is not the one announced at login, else `direct`.
 *
 * @example
 * ```ts
 * import { classifyPostgres } from "./_pooler.ts";
 * if (classifyPostgres({ loginPid: 7, backendPids: [7] }) !== "direct") throw new Error();
 * if (classifyPostgres({ loginPid: 9, backendPids: [7, 8] }) !== "transaction_pooler") throw new Error();
 * ```
 */
export function classifyPostgres(
  probe: { loginPid: number; backendPids: readonly number[] },
): PostgresFrontKind {
  const [first, second] = probe.backendPids;
  if (first !== undefined && second !== undefined && first !== second) return "transaction_pooler";
  return first === undefined || first === probe.loginPid ? "direct" : "pooler";
}

/** What answered a MySQL/MariaDB connection. */
export type MysqlFrontKind = "direct" | "proxysql" | "maxscale" | "multiplexed" | "proxy";

/** What the MySQL login and probe statements said. */
export interface MysqlProbe {
  /** Connection id of the handshake. */
  readonly handshakeId: number | undefined;
  /** Server version of the handshake. */
  readonly serverVersion: string | undefined;
  /** `@@version_comment`. */
  readonly versionComment: string | undefined;
  /** `CONNECTION_ID()` of one or two statements. */
  readonly connectionIds: readonly number[];
  /** `@@proxy_version`, when the server knew the variable (ProxySQL answers it). */
  readonly proxyVersion?: string;
  /** Whether `PROXYSQL INTERNAL SESSION` was answered (ProxySQL only). */
  readonly proxysqlSession?: boolean;
}

/**
 * Classifies a MySQL/MariaDB connection: ProxySQL (named in the version comment, or answering
 * `@@proxy_version` or `PROXYSQL INTERNAL SESSION`), MaxScale (named in the version comment or
 * string), multiplexed (`CONNECTION_ID()` changed between two statements), an unnamed proxy
 * (the server's connection id is not the handshake's), or direct.
 *
 * @param probe What the login and the probe statements said.
 * @returns The kind.
 *
 * @example
 * ```ts
 * import { classifyMysql } from "./_pooler.ts";
 * const base = { handshakeId: 5, serverVersion: "10.11.6-MariaDB", versionComment: "mariadb.org binary distribution" };
 * if (classifyMysql({ ...base, connectionIds: [5] }) !== "direct") throw new Error();
 * if (classifyMysql({ ...base, versionComment: "(ProxySQL)", connectionIds: [5] }) !== "proxysql") throw new Error();
 * ```
 */
export function classifyMysql(probe: MysqlProbe): MysqlFrontKind {
  const comment = probe.versionComment?.toLowerCase() ?? "";
  if (
    comment.includes("proxysql") || probe.proxyVersion !== undefined || probe.proxysqlSession
  ) return "proxysql";
  if (comment.includes("maxscale") || /maxscale/i.test(probe.serverVersion ?? "")) {
    return "maxscale";
  }
  const [first, second] = probe.connectionIds;
  if (first !== undefined && second !== undefined && first !== second) return "multiplexed";
  if (first !== undefined && probe.handshakeId !== undefined && first !== probe.handshakeId) {
    return "proxy";
  }
  return "direct";
}

/** Whether a SQL Server connection's `@@SPID` changed between two statements. */
export function classifyMssql(spids: readonly (number | undefined)[]): "direct" | "multiplexed" {
  const [first, second] = spids;
  return first !== undefined && second !== undefined && first !== second ? "multiplexed" : "direct";
}

const SESSION_NOTE = "session state (SET, temporary tables, locks, prepared statements) does " +
  "not survive from one statement to the next. rivet keeps each read in one transaction and " +
  "its timeouts local to it, so exports work; a direct or session-pooled connection is still " +
  "the better choice for long reads";

/** The kind phrase of each warning: its message starts with it, up to the first colon. */
const PHRASES = {
  transaction_pooler: "PostgreSQL answers through a transaction pooler",
  pooler: "PostgreSQL answers through a connection pooler or proxy",
  proxysql: "MySQL answers through ProxySQL",
  maxscale: "MySQL answers through MaxScale",
  multiplexed: "the database answers through a multiplexing proxy",
  proxy: "MySQL answers through a proxy",
} as const;

/**
 * The warning of a non-direct kind, or undefined for `direct`. The message starts with the
 * kind's phrase and a colon, so a run can show each kind once (see `pipeline/run_warnings.ts`).
 *
 * @param kind The kind.
 * @param detail The ids that showed it, for the message.
 * @returns Code and message.
 */
export function poolerWarning(
  kind: PostgresFrontKind | MysqlFrontKind,
  detail: string,
): Warning | undefined {
  if (kind === "direct") return undefined;
  const phrase = PHRASES[kind];
  if (kind === "transaction_pooler") {
    return {
      code: "source.pooler_transaction",
      message: `${phrase}: ${detail} (PgBouncer pool_mode=transaction or alike), so ` +
        SESSION_NOTE,
    };
  }
  if (kind === "pooler") {
    return {
      code: "source.pooler_detected",
      message: `${phrase}: ${detail}. If it pools by transaction, ${SESSION_NOTE}`,
    };
  }
  const tail = kind === "proxy"
    ? `If it multiplexes connections, ${SESSION_NOTE}`
    : kind === "multiplexed"
    ? `So ${SESSION_NOTE}`
    : `It may route statements to different servers, and ${SESSION_NOTE}`;
  return { code: "source.proxy_detected", message: `${phrase}: ${detail}. ${tail}` };
}

/**
 * Reports the warning of a kind once per source (a reconnect does not repeat it).
 *
 * @param kind The kind (`direct` reports nothing).
 * @param detail The ids that showed it.
 * @param sink The source's warning sink and the kinds it already reported.
 */
export function reportFront(
  kind: PostgresFrontKind | MysqlFrontKind,
  detail: string,
  sink: { onWarning: ((warning: Warning) => void) | undefined; reported: Set<string> },
): void {
  const warning = poolerWarning(kind, detail);
  if (warning === undefined || sink.onWarning === undefined || sink.reported.has(kind)) return;
  sink.reported.add(kind);
  sink.onWarning(warning);
}
