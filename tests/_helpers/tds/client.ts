/**
 * Test support: a thin promise wrapper over unmodified tedious, for tests and fixtures that talk
 * to the TDS test server or a real SQL Server: connect, run a batch or an sp_executesql call,
 * collect rows with their column metadata.
 *
 * @module
 */
import { Connection, Request } from "tedious";

/** Where and as whom to connect. */
export interface TdsLogin {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Real servers in CI use TLS with a self-signed certificate; the test server has none. */
  readonly encrypt?: boolean;
}

/** Opens a tedious connection; rejects with tedious' error (e.g. ELOGIN). */
export function connectTds(
  login: TdsLogin,
  options: Record<string, unknown> = {},
): Promise<Connection> {
  const conn = new Connection({
    server: login.host,
    authentication: {
      type: "default",
      options: { userName: login.user, password: login.password },
    },
    options: {
      port: login.port,
      database: login.database,
      encrypt: login.encrypt ?? false,
      trustServerCertificate: true,
      requestTimeout: 0,
      ...options,
    },
  });
  // tedious keeps the server's error number off the login error; carry it over.
  const numbers: number[] = [];
  conn.on("errorMessage", (m: { number: number }) => numbers.push(m.number));
  // A dropped connection also fails the running request; without a listener tedious' 'error'
  // event would be an uncaught exception.
  conn.on("error", () => {});
  return new Promise((resolve, reject) => {
    conn.once("connect", (err) => {
      if (!err) return resolve(conn);
      Object.assign(err, { serverErrors: numbers });
      reject(err);
    });
    conn.connect();
  });
}

/** Column metadata tedious reports. */
export interface TdsColumn {
  readonly colName: string;
  readonly type: { readonly name: string };
  readonly precision?: number;
  readonly scale?: number;
  readonly dataLength?: number;
  readonly udtInfo?: { readonly typeName: string };
}

/** A result: the columns of the last result set and every row's values. */
export interface TdsResult {
  readonly columns: TdsColumn[];
  readonly rows: unknown[][];
  readonly rowCount: number;
}

/** Parameters of an sp_executesql call: name → [tedious type, value, options (precision, …)]. */
export type TdsParams = Record<string, readonly [unknown, unknown, Record<string, unknown>?]>;

/**
 * Runs `sql` as a batch (`execSqlBatch`), or through sp_executesql (`execSql`) when `params` is
 * given (`{}` for none). `onRequest` sees the request before it is sent (pause, cancel).
 */
export function runTds(
  conn: Connection,
  sql: string,
  params?: TdsParams,
  onRequest?: (request: Request) => void,
): Promise<TdsResult> {
  return new Promise((resolve, reject) => {
    let columns: TdsColumn[] = [];
    const rows: unknown[][] = [];
    const request = new Request(sql, (err, rowCount) => {
      if (err) reject(err);
      else resolve({ columns, rows, rowCount: rowCount ?? 0 });
    });
    request.on("columnMetadata", (cols) => {
      columns = (Array.isArray(cols) ? cols : Object.values(cols)) as unknown as TdsColumn[];
    });
    request.on("row", (cols) => rows.push(cols.map((c: { value: unknown }) => c.value)));
    for (const [name, [type, value, options]] of Object.entries(params ?? {})) {
      request.addParameter(name, type as never, value, options);
    }
    onRequest?.(request);
    if (params) conn.execSql(request);
    else conn.execSqlBatch(request);
  });
}

/** Closes a connection and waits for its end. */
export function closeTds(conn: Connection): Promise<void> {
  return new Promise((resolve) => {
    if ((conn as unknown as { closed?: boolean }).closed) return resolve();
    conn.once("end", () => resolve());
    conn.close();
  });
}
