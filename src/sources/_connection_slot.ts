/**
 * The one connection of a source whose driver is an event emitter (MySQL through mysql2, SQL
 * Server through tedious): opened on first use, marked broken when the driver reports `error`
 * or `end` while no read watches it, replaced on the next use, and one read at a time.
 *
 * Layer: sources. Imports nothing from `src/`.
 *
 * @module
 */

/** What the slot needs of a driver connection. */
export interface SlotConnection {
  on(event: "error" | "end", listener: () => void): unknown;
}

/** How the slot opens and closes connections. */
export interface SlotDriver<C> {
  /** Connects and logs in (and whatever a new session needs before its first read). */
  open(signal?: AbortSignal): Promise<C>;
  /** Closes a connection without waiting; may throw when it is closed already. */
  destroy(conn: C): void;
}

/** One connection, reopened after it broke, read by one reader at a time. */
export class ConnectionSlot<C extends SlotConnection> {
  readonly #name: string;
  readonly #driver: SlotDriver<C>;
  #conn: C | undefined;
  #broken = false;
  #reading = false;

  /**
   * @param name The source class, for the "one read at a time" error.
   * @param driver Opens and closes connections.
   */
  constructor(name: string, driver: SlotDriver<C>) {
    this.#name = name;
    this.#driver = driver;
  }

  /** The current connection, if one is open. */
  get current(): C | undefined {
    return this.#conn;
  }

  /**
   * The open connection, or a new one when there is none or it broke.
   *
   * @param signal Aborts the connect.
   * @returns A usable connection.
   */
  async get(signal?: AbortSignal): Promise<C> {
    if (this.#conn && !this.#broken) return this.#conn;
    this.close();
    const conn = await this.#driver.open(signal);
    // A fatal socket error with no command running is emitted on the connection; without a
    // listener it would be thrown as an uncaught error.
    const broke = () => {
      if (this.#conn === conn) this.#broken = true;
    };
    conn.on("error", broke);
    conn.on("end", broke);
    this.#conn = conn;
    this.#broken = false;
    return conn;
  }

  /**
   * Closes `conn` if it is still the current connection (a read found it unusable).
   *
   * @param conn The connection the read used.
   */
  discard(conn: C): void {
    if (this.#conn === conn) this.close();
  }

  /** Closes the current connection, if any. */
  close(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#broken = false;
    if (conn === undefined) return;
    try {
      this.#driver.destroy(conn);
    } catch { /* already closed */ }
  }

  /**
   * Starts one read: refused while another is under way; `start` gets the connection and the
   * callback to call once the read is over (its stream ended or was cancelled).
   *
   * @param signal Aborts the connect.
   * @param start Starts the read on the connection.
   * @returns What `start` returns.
   */
  async read<T>(
    signal: AbortSignal | undefined,
    start: (conn: C, done: () => void) => Promise<T>,
  ): Promise<T> {
    if (this.#reading) {
      throw new Error(`${this.#name}: one read at a time; finish or cancel the previous stream`);
    }
    this.#reading = true;
    try {
      const conn = await this.get(signal);
      return await start(conn, () => (this.#reading = false));
    } catch (error) {
      this.#reading = false;
      throw error;
    }
  }
}
