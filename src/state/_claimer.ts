/**
 * Who claims a chunk task: the host name and pid recorded on it, and its lease expiry.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { ChunkClaimOptions } from "../core/state.ts";

/** The recorded holder of a claim. */
export interface Claimer {
  readonly host: string | null;
  readonly pid: number;
  /** ISO time the lease ends, or null without a lease. */
  readonly leaseExpiresAt: string | null;
}

let cachedHost: string | null | undefined;

/** Stands in for the host name in tests that run several "hosts" on one machine. */
export const TEST_HOSTNAME_ENV = "RIVET_TEST_HOSTNAME";

/** This machine's host name, or null when the sandbox does not grant `--allow-sys=hostname`. */
export function thisHost(): string | null {
  if (cachedHost === undefined) {
    let stand: string | undefined;
    try {
      stand = Deno.env.get(TEST_HOSTNAME_ENV) || undefined;
    } catch {
      // No env permission: the hook is a test feature, so treat it as unset.
    }
    try {
      cachedHost = stand ?? Deno.hostname();
    } catch {
      cachedHost = null;
    }
  }
  return cachedHost;
}

/**
 * The claimer a claim records: the caller's, else this process on this host.
 *
 * @param options The caller's claimer.
 * @param now The claim time (ms since the epoch).
 */
export function claimer(options: ChunkClaimOptions = {}, now: number = Date.now()): Claimer {
  return {
    host: options.host ?? thisHost(),
    pid: options.pid ?? Deno.pid,
    leaseExpiresAt: options.leaseMs === undefined
      ? null
      : new Date(now + options.leaseMs).toISOString(),
  };
}
