/**
 * The source TLS policy: a remote host needs an explicit `tls:` block (`mode: disable` is the
 * explicit opt-in to plaintext); a loopback host may go without one.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { SourceKind, TlsSpec } from "../core/spec.ts";
import type { ConnectionInfo } from "./connection.ts";
import { isLoopbackHost } from "../_util/loopback.ts";
import { TRUST_SERVER_CERTIFICATE, urlBoolean } from "../_util/url_params.ts";

/**
 * Refuses plaintext to a non-loopback host unless the config opts in, before any network I/O.
 *
 * No `tls:` block + loopback host (`localhost`, 127/8, `::1`) is allowed in plaintext. No `tls:`
 * block + any other host (an unparseable one included: fail closed) is refused. `mode: disable`
 * to a remote host is allowed with a "TLS is not enforced" warning; so is switching certificate
 * or hostname verification off.
 *
 * SQL Server encrypts by default (as its own drivers do): without a `tls:` block a remote host is
 * encrypted with full certificate verification, so it is not refused; only `encrypt=false` in its
 * URL is (plaintext needs the explicit `mode: disable`).
 *
 * @param info Resolved connection (`host`, and the `encrypt` / `trust_server_certificate` URL
 *   parameters of SQL Server).
 * @param tls The `source.tls` block, undefined when none was written.
 * @param kind The source engine (default `postgres`).
 * @returns Warnings to print once.
 * @throws {ConfigError} `source.tls_required`.
 *
 * @example
 * ```ts
 * import { checkTlsPolicy } from "./tls.ts";
 * const local = { host: "127.0.0.1", port: 5432, user: "u", database: "d", params: {} };
 * if (checkTlsPolicy(local, undefined).warnings.length !== 0) throw new Error();
 * ```
 */
export function checkTlsPolicy(
  info: ConnectionInfo,
  tls: TlsSpec | undefined,
  kind: SourceKind = "postgres",
): { warnings: string[] } {
  const loopback = isLoopbackHost(info.host);
  if (loopback) return { warnings: [] };
  const host = info.host.replace(/[^\x20-\x7e]/g, "?");
  if (kind === "mssql" && tls === undefined) return mssqlDefaultTls(info, host);
  if (tls === undefined) {
    throw new ConfigError(
      `TLS required for non-loopback host '${host}': the source has no tls: block`,
      {
        code: "source.tls_required",
        hint: "add `tls: {mode: require}` (or verify-full with ca_file) under source:, or " +
          "`tls: {mode: disable}` to opt in to plaintext explicitly",
      },
    );
  }
  const warnings: string[] = [];
  if (tls.mode === "disable") {
    warnings.push(
      `TLS is not enforced for host '${host}' (source.tls.mode: disable): traffic is plaintext`,
    );
  } else if (tls.acceptInvalidCerts || tls.acceptInvalidHostnames) {
    warnings.push(
      `TLS is not enforced for host '${host}': certificate or hostname verification is disabled`,
    );
  }
  return { warnings };
}

function mssqlDefaultTls(info: ConnectionInfo, host: string): { warnings: string[] } {
  if (urlBoolean(info.params, "encrypt") === false) {
    const encrypt = info.params.encrypt!.trim().toLowerCase();
    throw new ConfigError(
      `TLS required for non-loopback host '${host}': the URL asks for encrypt=${encrypt} and the ` +
        "source has no tls: block",
      {
        code: "source.tls_required",
        hint: "remove encrypt=false from the URL (SQL Server encrypts by default), or add " +
          "`tls: {mode: disable}` under source: to opt in to plaintext explicitly",
      },
    );
  }
  if (urlBoolean(info.params, ...TRUST_SERVER_CERTIFICATE) === true) {
    return {
      warnings: [
        `TLS is not enforced for host '${host}': trust_server_certificate=true disables ` +
        "certificate verification",
      ],
    };
  }
  return { warnings: [] };
}
