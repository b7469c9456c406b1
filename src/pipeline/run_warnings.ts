/**
 * Warnings a run shows once, however many connections raise them: what answers the database
 * (a pooler or proxy) is the same for every export, chunk worker and child process of a run, and
 * each of them probes its own connections.
 *
 * Layer: pipeline.
 *
 * @module
 */
import type { EventSink } from "../core/events.ts";

/** Codes shown once per run and kind (the message up to its first colon names the kind). */
export const ONCE_PER_RUN_CODES: ReadonlySet<string> = new Set([
  "source.pooler_transaction",
  "source.pooler_detected",
  "source.proxy_detected",
]);

/**
 * Wraps a run's event sink so that each {@linkcode ONCE_PER_RUN_CODES} warning passes once per
 * kind; every other event passes unchanged.
 *
 * @param emit The run's sink.
 * @returns The filtering sink.
 *
 * @example
 * ```ts
 * import { oncePerRun } from "./run_warnings.ts";
 * import type { RivetEvent } from "../core/events.ts";
 * const seen: RivetEvent[] = [];
 * const emit = oncePerRun((e) => seen.push(e));
 * const w = { type: "warning", code: "source.proxy_detected", message: "MySQL answers through ProxySQL: x" } as const;
 * emit({ ...w, export: "a" });
 * emit({ ...w, export: "b" });
 * if (seen.length !== 1) throw new Error();
 * ```
 */
export function oncePerRun(emit: EventSink): EventSink {
  const seen = new Set<string>();
  return (event) => {
    if (event.type === "warning" && ONCE_PER_RUN_CODES.has(event.code)) {
      const message = event.message.replace(/^export '[^']*': /, "");
      const key = `${event.code} ${message.slice(0, message.indexOf(":"))}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    emit(event);
  };
}
