/**
 * A tiny loopback TCP proxy that forwards to a local port and can cut a connection part-way,
 * to test how a client behaves when a store drops the connection mid-request (mid-upload).
 *
 * A cut closes both sides of the chosen connection after a given number of client→target bytes
 * were forwarded: the client sees its request die mid-body ("socket hang up", EPIPE or
 * ECONNRESET), and the target sees a truncated request followed by end of stream. A corruption
 * inverts one client→target byte of the chosen connection and forwards everything else: a
 * store that does not check Content-MD5 (s3rver) then stores and reports the altered bytes.
 *
 * @module
 */

/** Options of {@linkcode startTcpProxy}. */
export interface TcpProxyOptions {
  /** Port on 127.0.0.1 to forward to. */
  readonly targetPort: number;
  /**
   * Client→target bytes forwarded on the chosen connection before it is closed (0: closed as
   * soon as it is accepted).
   */
  readonly cutAfterBytes?: number;
  /**
   * Which connection the fault (`cutAfterBytes` or `corruptByteAt`) hits: its 1-based number in
   * accept order, or `"all"` for every one; default 1. Without a fault option the proxy is a
   * plain pass-through.
   */
  readonly cutConnection?: number | "all";
  /**
   * Stops cutting after this many cuts (default: no limit). With `cutConnection: "all"` this
   * cuts whichever connection first reaches `cutAfterBytes`, which suits HTTP clients whose
   * pooling makes connection numbers unpredictable.
   */
  readonly maxCuts?: number;
  /**
   * Offset in the client→target bytes of the chosen connection whose bits are inverted (the
   * connection is not cut unless `cutAfterBytes` is also set).
   */
  readonly corruptByteAt?: number;
}

/** A running proxy. Dispose it (or call `close`) to stop listening and drop open connections. */
export interface TcpProxy extends AsyncDisposable {
  /** Loopback port clients connect to. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections cut so far. */
  readonly cuts: number;
  /** Bytes corrupted so far. */
  readonly corruptions: number;
  /** Stops listening and closes every open connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the proxy on a free port of 127.0.0.1.
 *
 * @param options Where to forward, and which connection to cut or corrupt where.
 * @returns The proxy; `connections`, `cuts` and `corruptions` count what happened.
 *
 * @example Cut whichever connection first carries 1 MiB, once
 * ```ts ignore
 * import { startTcpProxy } from "./tcp_proxy.ts";
 * await using proxy = await startTcpProxy({
 *   targetPort: 4569,
 *   cutAfterBytes: 1 << 20,
 *   cutConnection: "all",
 *   maxCuts: 1,
 * });
 * // point the client at http://127.0.0.1:${proxy.port}
 * ```
 */
export function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const faulty = options.cutAfterBytes !== undefined || options.corruptByteAt !== undefined;
  const which = faulty ? options.cutConnection ?? 1 : 0;
  const cutAfter = options.cutAfterBytes;
  const maxCuts = options.maxCuts ?? Infinity;
  const corruptAt = options.corruptByteAt;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let connections = 0;
  let cuts = 0;
  let corruptions = 0;
  let closed = false;

  const shut = (conn: Deno.Conn) => {
    if (!open.delete(conn)) return;
    try {
      conn.close();
    } catch { /* closed already */ }
  };

  const serve = async (client: Deno.Conn, index: number) => {
    open.add(client);
    const chosen = which === "all" || which === index;
    const cut = chosen && cutAfter !== undefined;
    const corrupt = chosen && corruptAt !== undefined;
    let target: Deno.Conn;
    try {
      target = await Deno.connect({ hostname: "127.0.0.1", port: options.targetPort });
    } catch {
      shut(client);
      return;
    }
    open.add(target);
    const end = () => {
      shut(client);
      shut(target);
    };
    if (cut && cutAfter === 0 && cuts < maxCuts) {
      cuts++;
      end();
      return;
    }
    let sent = 0;
    const upstream = async () => {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        let chunk = buf.subarray(0, n);
        if (corrupt && sent <= corruptAt && corruptAt < sent + n) {
          chunk[corruptAt - sent] = ~chunk[corruptAt - sent]! & 0xff;
          corruptions++;
        }
        if (cut && sent + n >= cutAfter && cuts < maxCuts) {
          chunk = chunk.subarray(0, cutAfter - sent);
          if (chunk.length > 0) await writeAll(target, chunk);
          sent += chunk.length;
          cuts++;
          break;
        }
        await writeAll(target, chunk);
        sent += n;
      }
    };
    const downstream = async () => {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await target.read(buf);
        if (n === null) break;
        await writeAll(client, buf.subarray(0, n));
      }
    };
    // Either direction ending (or failing) ends the connection: half-closed HTTP is not needed.
    await Promise.race([upstream(), downstream()]).catch(() => {});
    end();
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (closed) {
        conn.close();
        return;
      }
      connections++;
      serve(conn, connections).catch(() => {});
    }
  })();

  const close = async () => {
    if (closed) return;
    closed = true;
    listener.close();
    for (const conn of [...open]) shut(conn);
    await accepting;
  };

  return Promise.resolve({
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return connections;
    },
    get cuts() {
      return cuts;
    },
    get corruptions() {
      return corruptions;
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
