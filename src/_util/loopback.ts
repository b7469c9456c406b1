/**
 * Loopback detection for the TLS policy and the object-store endpoint guard.
 *
 * Layer: _util. Pure, no I/O: shared by the config checks and the sources.
 *
 * @module
 */

/**
 * Whether a host name or address is loopback: `localhost`, any `127.0.0.0/8` address, or `::1`
 * (bracketed or fully written). Anything else, including an unparseable or empty host, is not
 * loopback, so callers fail closed.
 *
 * @param host Host as written (`db.internal`, `127.0.0.1`, `[::1]`).
 * @returns True only for loopback hosts.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./loopback.ts";
 * if (!isLoopbackHost("127.8.0.1") || isLoopbackHost("10.0.0.1")) throw new Error();
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost" || h === "localhost.") return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) return v4.slice(1).every((part) => Number(part) <= 255) && v4[1] === "127";
  if (h.includes(":")) return isIpv6Loopback(h);
  return false;
}

function isIpv6Loopback(h: string): boolean {
  if (!/^[0-9a-f:]+$/.test(h) || (h.match(/::/g) ?? []).length > 1) return false;
  const [head = "", tail] = h.split("::");
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headParts.length - tailParts.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return false;
  const groups = [...headParts, ...new Array<string>(missing).fill("0"), ...tailParts];
  if (groups.some((g) => g.length === 0 || g.length > 4)) return false;
  return groups.slice(0, 7).every((g) => parseInt(g, 16) === 0) && parseInt(groups[7]!, 16) === 1;
}

/**
 * The host of an endpoint URL such as `http://127.0.0.1:9000`; a missing scheme is read as http.
 *
 * @param endpoint The endpoint as written.
 * @returns The host, or undefined when the endpoint cannot be parsed.
 */
export function endpointHost(endpoint: string): string | undefined {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  try {
    const host = new URL(text).hostname;
    return host === "" ? undefined : host;
  } catch {
    return undefined;
  }
}
