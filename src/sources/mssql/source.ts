/**
 * `MssqlSource`: the {@linkcode Source} contract over npm:tedious for SQL Server and Azure SQL.
 * One connection, one read at a time; a broken connection is replaced on the next call.
 *
 * Right after the login one probe asks what the server is (engine edition, version) and whether
 * the database allows snapshot isolation. Reads then use SNAPSHOT, or READ COMMITTED with one
 * warning. Azure SQL Database / Managed Instance (engine editions 5 and 8) get one note about the
 * gateway. One more statement reads `@@SPID` again: a proxy that multiplexes connections runs
 * the two on different sessions, which warns once (`_pooler.ts`).
 *
 * @module
 */
import type { SignalOptions, SourceSpec, Warning } from "../../core/spec.ts";
import type {
  BatchStream,
  ConnectionInfo,
  ReadOptions,
  ReadRequest,
  Source,
} from "../../core/source.ts";
import { installExactDecoders } from "./_decode.ts";
import type { MssqlErrorContext } from "./_errors.ts";
import {
  connectMssql,
  type MssqlConfig,
  mssqlConfig,
  type MssqlConnection,
  runBatch,
} from "./connect.ts";
import { readQuery } from "./read.ts";
import { ConnectionSlot } from "../_connection_slot.ts";
import { classifyMssql, reportFront } from "../_pooler.ts";

/** Options of {@linkcode openMssqlSource}. */
export interface MssqlSourceOptions extends SignalOptions {
  /** Receives warnings (snapshot isolation unavailable, Azure SQL gateway, truncated ticks). */
  readonly onWarning?: (warning: Warning) => void;
}

/** What the login probe learnt about the server. */
export interface MssqlServerFacts {
  /** `SERVERPROPERTY('EngineEdition')`: 5 = Azure SQL Database, 8 = Azure SQL Managed Instance. */
  readonly engineEdition: number | undefined;
  readonly productVersion: string | undefined;
  readonly database: string | undefined;
  /** Session id (`@@SPID`) of the connection. */
  readonly spid: number | undefined;
  /** Whether the database allows `SET TRANSACTION ISOLATION LEVEL SNAPSHOT`. */
  readonly snapshot: boolean;
}

/** The probe run once per connection. */
export const SERVER_PROBE = "SELECT CAST(SERVERPROPERTY('EngineEdition') AS int), " +
  "CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), DB_NAME(), @@SPID, " +
  "(SELECT TOP 1 CAST(d.snapshot_isolation_state AS int) FROM sys.databases d " +
  "WHERE d.name = DB_NAME())";

function num(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return undefined;
}

/** The facts of a new connection, from {@linkcode SERVER_PROBE}. */
async function probeServer(
  conn: MssqlConnection,
  errors: MssqlErrorContext,
): Promise<MssqlServerFacts> {
  const [row] = await runBatch(conn, SERVER_PROBE, errors);
  const edition = num(row?.[0]);
  return {
    engineEdition: edition,
    productVersion: typeof row?.[1] === "string" ? row[1] : undefined,
    database: typeof row?.[2] === "string" ? row[2] : undefined,
    spid: num(row?.[3]),
    // Azure SQL Database always allows snapshot isolation.
    snapshot: num(row?.[4]) === 1 || edition === 5,
  };
}

/** A SQL Server source holding one connection. */
export class MssqlSource implements Source {
  /** Always `mssql`. */
  readonly kind = "mssql" as const;
  readonly #config: MssqlConfig;
  readonly #onWarning: ((warning: Warning) => void) | undefined;
  readonly #slot: ConnectionSlot<MssqlConnection>;
  #facts: MssqlServerFacts | undefined;
  #warned = new Set<string>();

  /**
   * @param config tedious options (holds the password) and message names.
   * @param onWarning Warnings sink.
   */
  constructor(config: MssqlConfig, onWarning?: (warning: Warning) => void) {
    this.#config = config;
    this.#onWarning = onWarning;
    this.#slot = new ConnectionSlot("MssqlSource", {
      open: async (signal) => {
        const conn = await connectMssql(config, signal);
        let spid: number | undefined;
        try {
          this.#facts = await probeServer(conn, config.errors);
          spid = num((await runBatch(conn, "SELECT @@SPID", config.errors))[0]?.[0]);
        } catch (error) {
          conn.close();
          throw error;
        }
        this.#warnOnce();
        reportFront(
          classifyMssql([this.#facts.spid, spid]),
          `@@SPID was ${this.#facts.spid}, then ${spid}`,
          { onWarning: this.#onWarning, reported: this.#warned },
        );
        return conn;
      },
      destroy: (conn) => conn.close(),
    });
  }

  get #errors(): MssqlErrorContext {
    return this.#config.errors;
  }

  /** Opens (or reopens after a failure) the connection; each new one is probed once. */
  connection(signal?: AbortSignal): Promise<MssqlConnection> {
    return this.#slot.get(signal);
  }

  #warnOnce(): void {
    const facts = this.#facts!;
    const warn = (code: string, message: string) => {
      if (this.#warned.has(code)) return;
      this.#warned.add(code);
      this.#onWarning?.({ code, message });
    };
    if (!facts.snapshot) {
      warn(
        "source.snapshot_unavailable",
        `Database '${facts.database ?? "?"}' does not allow snapshot isolation; reading with ` +
          "READ COMMITTED (each statement sees committed rows, chunks may see different " +
          "moments, and reads take shared locks). To read from one snapshot without blocking " +
          "writers: ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON",
      );
    }
    if (facts.engineEdition === 5 || facts.engineEdition === 8) {
      warn(
        "source.azure_gateway",
        `Connected to Azure SQL (${
          facts.engineEdition === 5 ? "Database" : "Managed Instance"
        }) through its gateway: idle connections may be dropped and sessions/workers are ` +
          "limited by the service tier; keep `parallel` within that limit (errors 10928/10929 " +
          "are retried as transient)",
      );
    }
  }

  /** Server facts of the current connection (after the first connect). */
  get facts(): MssqlServerFacts | undefined {
    return this.#facts;
  }

  /** {@inheritDoc Source.read} */
  read(request: ReadRequest, options: ReadOptions): Promise<BatchStream> {
    return this.#slot.read(options.signal, (conn, done) =>
      readQuery(conn, request, options, {
        snapshot: this.#facts!.snapshot,
        errors: this.#errors,
        markBroken: () => this.#slot.discard(conn),
        onWarning: this.#onWarning,
        onDone: done,
      }));
  }

  /** {@inheritDoc Source.ping} */
  async ping(options: SignalOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const conn = await this.connection(options.signal);
    await runBatch(conn, "SELECT 1", this.#errors);
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#slot.close();
    return Promise.resolve();
  }
}

/**
 * Connects to SQL Server and returns a source. Fails fast on bad credentials or TLS settings.
 *
 * @param spec `source` block (TLS).
 * @param connection Host, port, login, database, URL parameters.
 * @param options Warnings sink and signal.
 * @returns A connected source; dispose it with `await using`.
 */
export async function openMssqlSource(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: MssqlSourceOptions = {},
): Promise<MssqlSource> {
  installExactDecoders();
  const config = await mssqlConfig(connection, spec.tls);
  const source = new MssqlSource(config, options.onWarning);
  options.signal?.throwIfAborted();
  await source.connection(options.signal);
  return source;
}
