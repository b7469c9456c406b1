/**
 * Dials PostgreSQL: TCP, then the SSLRequest/`Deno.startTls` upgrade the TLS mode asks for. The only
 * file of the PostgreSQL source that calls `Deno.*` network and file APIs.
 *
 * TLS semantics (Deno cannot turn certificate or hostname verification off per connection):
 * - `disable`: plaintext.
 * - `require`, `verify-ca`, `verify-full`: TLS with the certificate chain AND the hostname verified
 *   against the system roots, plus `ca_file` when given. `require` is therefore stricter than libpq's
 *   (which encrypts without verifying), and `verify-ca` behaves like `verify-full`.
 * - `accept_invalid_certs` / `accept_invalid_hostnames`: refused with a ConfigError, because honouring
 *   them would need the process-wide `--unsafely-ignore-certificate-errors` flag.
 *
 * @module
 */
import { ConfigError } from "../../core/errors.ts";
import { readCaFile } from "../_ca_file.ts";
import type { TlsSpec } from "../../core/spec.ts";
import { connectFailed, PgTransientError } from "./_errors.ts";
import { sslRequest } from "./_messages.ts";

/** Where and how to dial. */
export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsSpec | undefined;
  /** Give up dialing after this many ms (0 = OS default). */
  readonly connectTimeoutMs?: number;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * Checks the TLS options Deno can honour, before any socket is opened.
 *
 * @param tls `source.tls`.
 */
export function checkTlsSupport(tls: TlsSpec | undefined): void {
  if (tls === undefined || tls.mode === "disable") return;
  if (tls.acceptInvalidCerts || tls.acceptInvalidHostnames) {
    const key = tls.acceptInvalidCerts ? "accept_invalid_certs" : "accept_invalid_hostnames";
    throw new ConfigError(
      `source.tls.${key} is not supported: Deno cannot skip certificate checks per connection; ` +
        "set source.tls.ca_file to the server's CA certificate instead",
      { code: "config.not_supported" },
    );
  }
}

/**
 * Opens a socket to the server, upgraded to TLS when the mode asks for it.
 *
 * @param options Host, port, TLS spec.
 * @returns A connection ready for the startup packet.
 */
export async function dial(options: DialOptions): Promise<Deno.Conn> {
  const endpoint = `${options.host}:${options.port}`;
  checkTlsSupport(options.tls);
  const caCerts = options.tls?.caFile ? [await readCaFile(options.tls.caFile)] : undefined;
  let conn: Deno.TcpConn;
  try {
    const pending = Deno.connect({ hostname: options.host, port: options.port, transport: "tcp" });
    if (options.connectTimeoutMs && options.connectTimeoutMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Deno.errors.TimedOut(`after ${options.connectTimeoutMs} ms`)),
          options.connectTimeoutMs,
        );
      });
      try {
        conn = await Promise.race([pending, timeout]);
      } finally {
        clearTimeout(timer);
        pending.then((c) => {
          if (c !== conn) c.close();
        }, () => {});
      }
    } else {
      conn = await pending;
    }
  } catch (error) {
    throw connectFailed(error, endpoint);
  }
  conn.setNoDelay(true);
  if (options.tls === undefined || options.tls.mode === "disable") return conn;
  try {
    await writeAll(conn, sslRequest());
    const answer = new Uint8Array(1);
    const n = await conn.read(answer);
    if (n !== 1 || answer[0] !== 0x53 /* S */) {
      conn.close();
      throw new ConfigError(
        `The PostgreSQL server at ${endpoint} does not accept TLS but source.tls.mode is ` +
          `'${options.tls.mode}'; enable ssl on the server or set source.tls.mode: disable`,
        { code: "source.tls_unavailable" },
      );
    }
    const tls = await Deno.startTls(conn, {
      hostname: options.host,
      ...(caCerts ? { caCerts } : {}),
    });
    // The handshake is lazy; run it now so certificate errors are reported as such.
    await tls.handshake();
    return tls;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    try {
      conn.close();
    } catch { /* already closed */ }
    const msg = error instanceof Error ? error.message : String(error);
    if (/certificate|UnknownIssuer|NotValidForName|invalid peer/i.test(msg)) {
      throw new ConfigError(
        `TLS certificate of ${endpoint} was rejected: ${msg}; set source.tls.ca_file to the CA ` +
          "that signed the server certificate and connect with the name it was issued for",
        { code: "source.tls_verify_failed", cause: error },
      );
    }
    throw new PgTransientError(`TLS handshake with ${endpoint} failed: ${msg}`, {
      code: "source.connect_failed",
      hint:
        "check that the server is running and that host and port are right and reachable from here, then retry",
      cause: error,
    });
  }
}
