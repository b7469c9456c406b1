/**
 * Notifications: after a run, one POST per export outcome to Slack (an incoming webhook) and/or a
 * generic webhook (a signed JSON summary), for the events each target subscribes to. What the
 * events mean, the bodies and how a receiver verifies the signature: docs/notifications.md.
 *
 * Best effort by design: the exports are committed and the exit code is decided before anything
 * is sent, every failure is a `notify.failed` warning, and each target gets a total deadline
 * (retries included) so a dead receiver never holds the run for long. A URL is shown as its
 * scheme and host only: a Slack webhook's path is its secret, and a receiver's query often
 * carries a token.
 *
 * Only the process that runs `rivet run` sends (never a `--parallel-export-processes` child,
 * whose network access is narrowed to its own export): it sees every export's events.
 *
 * Layer: pipeline.
 *
 * @module
 */
import type { Outcome, RivetEvent } from "../core/events.ts";
import type { NotificationsSpec, NotifyEvent } from "../core/spec.ts";
import { VERSION } from "../core/version.ts";
import { hmacSha256Hex } from "../_util/hmac.ts";
import { INPUT_LIMITS, readInputText } from "../_util/input_file.ts";
import { isLoopbackHost } from "../_util/loopback.ts";
import { redact, registerSecret } from "../_util/redact.ts";
import { backoffMs, withRetries } from "../_util/retry.ts";

/**
 * Warning codes that make a successful export `degraded`: it finished and its data is
 * committed, but rivet had to recover on the way, or could not keep its own records.
 */
export const DEGRADING_CODES: Readonly<Record<string, string>> = {
  "run.retrying": "retried after a transient failure",
  "destination.retrying": "a destination request was retried",
  "tuning.batch_shrunk": "batches were shrunk to fit the memory limit",
  "resume.quarantined": "unexpected files were moved to _quarantine",
  "state.metrics_failed": "the run's metrics could not be stored",
  "state.journal_failed": "the run's journal could not be stored",
  "state.progression_failed": "the progression could not be stored",
  "state.schema_failed": "the schema baseline could not be stored",
  "schema.shape_drift": "a text or binary column grew past shape_drift_warn_factor",
};

/** What the run's events said about one export, beyond its outcome. */
export interface ExportSignals {
  /** A schema drift was reported (`on_schema_drift: warn`) or failed the export (`fail`). */
  readonly schemaChanged: boolean;
  /** The {@linkcode DEGRADING_CODES} seen, in order of first appearance. */
  readonly degraded: readonly string[];
}

/** Collects, from the run's events, what each export's notification needs. */
export class NotificationWatch {
  readonly #byExport = new Map<string, { schemaChanged: boolean; degraded: Set<string> }>();

  /**
   * Reads one run event (every event of the run should pass through here).
   *
   * @param event The event.
   */
  observe(event: RivetEvent): void {
    if (event.type !== "warning" || event.export === undefined) return;
    const isDrift = event.code === "schema.drift";
    if (!isDrift && DEGRADING_CODES[event.code] === undefined) return;
    let entry = this.#byExport.get(event.export);
    if (!entry) {
      entry = { schemaChanged: false, degraded: new Set() };
      this.#byExport.set(event.export, entry);
    }
    if (isDrift) entry.schemaChanged = true;
    else entry.degraded.add(event.code);
  }

  /**
   * The signals of one outcome.
   *
   * @param o The outcome.
   * @returns Whether its schema changed and why it is degraded.
   */
  signals(o: Outcome): ExportSignals {
    const entry = this.#byExport.get(o.export);
    return {
      schemaChanged: (entry?.schemaChanged ?? false) || o.error?.code === "schema.drift",
      degraded: [...entry?.degraded ?? []],
    };
  }
}

/**
 * The events an outcome stands for: `failure` (status failed), `schema_change` (drift seen),
 * `degraded` (succeeded with a {@linkcode DEGRADING_CODES} warning), `success` (did not fail;
 * an empty result skipped by `skip_empty` counts).
 *
 * @param o The outcome.
 * @param signals Its signals.
 * @returns The events, in that order.
 *
 * @example
 * ```ts
 * import { outcomeEvents } from "./notify.ts";
 * import type { Outcome } from "../core/events.ts";
 * const o = { status: "success" } as Outcome;
 * const events = outcomeEvents(o, { schemaChanged: true, degraded: ["run.retrying"] });
 * if (events.join() !== "schema_change,degraded,success") throw new Error(events.join());
 * ```
 */
export function outcomeEvents(o: Outcome, signals: ExportSignals): NotifyEvent[] {
  const failed = o.status === "failed";
  return [
    ...(failed ? ["failure" as const] : []),
    ...(signals.schemaChanged ? ["schema_change" as const] : []),
    ...(!failed && signals.degraded.length > 0 ? ["degraded" as const] : []),
    ...(!failed ? ["success" as const] : []),
  ];
}

function firstErrorLine(o: Outcome): string | undefined {
  return o.error ? redact(o.error.message).split("\n")[0]?.slice(0, 500) : undefined;
}

/**
 * The Slack message of one outcome: one attachment, red when the export failed, amber when it
 * succeeded degraded or with a schema change, green otherwise; titled `rivet: <run_id>`.
 *
 * @param o The outcome.
 * @param signals Its signals.
 * @returns The JSON body.
 */
export function slackBody(o: Outcome, signals: ExportSignals): string {
  const color = o.status === "failed"
    ? "#d40e0d"
    : signals.schemaChanged || signals.degraded.length > 0
    ? "#f2a600"
    : "#2eb67d";
  const degraded = signals.degraded.map((code) => DEGRADING_CODES[code] ?? code);
  const error = firstErrorLine(o);
  const lines = [
    `export: ${o.export}`,
    `status: ${o.status}${o.status !== "failed" && degraded.length > 0 ? " (degraded)" : ""}`,
    `rows: ${o.rows}`,
    `duration: ${o.durationMs} ms`,
    ...(error === undefined ? [] : [`error: ${error}`]),
    ...(signals.schemaChanged ? ["schema changed"] : []),
    ...(o.status !== "failed" && degraded.length > 0 ? [`degraded: ${degraded.join("; ")}`] : []),
  ];
  const text = redact(lines.join("\n"));
  return JSON.stringify({
    attachments: [{
      color,
      title: `rivet: ${o.runId}`,
      fallback: `rivet ${o.export}: ${o.status}`,
      text,
      footer: `rivet ${VERSION}`,
    }],
  });
}

/**
 * The webhook body of one outcome: the export's entry of `rivet run --json` (`per_export`),
 * plus when it ran, where it wrote, the events it stands for and why it is degraded.
 *
 * @param o The outcome.
 * @param signals Its signals.
 * @param summary The `per_export` entry of the outcome.
 * @returns The JSON body.
 */
export function webhookBody(
  o: Outcome,
  signals: ExportSignals,
  summary: Readonly<Record<string, unknown>>,
): string {
  return JSON.stringify({
    rivet_version: VERSION,
    events: outcomeEvents(o, signals),
    ...summary,
    started_at: o.startedAt,
    finished_at: o.finishedAt,
    output: redact(o.output),
    error_code: o.error?.code ?? null,
    schema_changed: signals.schemaChanged,
    degraded_reasons: o.status === "failed" ? [] : signals.degraded,
  });
}

/**
 * Rewrites every URL in a text to its scheme and host (`https://hooks.slack.com`): a fetch
 * error names the whole URL, whose path or query may be the secret.
 *
 * @param text Any text.
 * @returns The text without URL paths, queries or userinfo.
 *
 * @example
 * ```ts
 * import { hostsOnly } from "./notify.ts";
 * const out = hostsOnly("error sending request for url (https://hooks.slack.com/services/T/B/x)");
 * if (out !== "error sending request for url (https://hooks.slack.com)") throw new Error(out);
 * ```
 */
export function hostsOnly(text: string): string {
  return text.replace(
    /\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#@()]*@)?([^\s/?#()]*)[^\s()]*/gi,
    "$1$2",
  );
}

/** A receiver's answer that is not 2xx. */
class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(
      status >= 300 && status < 400
        ? `HTTP ${status} (redirects are not followed)`
        : `HTTP ${status}`,
    );
  }
}

function transient(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status === 429 || error.status >= 500;
  // fetch's network failures are TypeErrors; an attempt's own timeout is a TimeoutError.
  return error instanceof TypeError ||
    (error instanceof DOMException && error.name === "TimeoutError");
}

/** How long one attempt may take, at most. */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** Retries after the first attempt, within the deadline. */
const RETRIES = 5;

/** One target's delivery: where, what, and the headers besides the content type. */
interface Delivery {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly deadlineMs: number;
}

/**
 * An abort signal that fires after `ms` with a `TimeoutError`; dispose it to clear its timer
 * (a timer left behind would keep the process alive after the run).
 */
function timeout(ms: number): { signal: AbortSignal } & Disposable {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("deadline passed", "TimeoutError")),
    ms,
  );
  return { signal: controller.signal, [Symbol.dispose]: () => clearTimeout(timer) };
}

/** Posts a body until a 2xx answer, a permanent failure, the retries or the deadline end. */
async function post(delivery: Delivery, fetchFn: typeof fetch): Promise<void> {
  using deadline = timeout(delivery.deadlineMs);
  let retryAfterMs: number | undefined;
  await withRetries({
    retries: RETRIES,
    signal: deadline.signal,
    transient,
    failure: (error) => error,
    delayMs: (failed) =>
      retryAfterMs ?? backoffMs(failed, { baseMs: 500, maxMs: 8_000, jitter: [0.75, 1.25] }),
    warn: () => {},
  }, async () => {
    retryAfterMs = undefined;
    using attempt = timeout(ATTEMPT_TIMEOUT_MS);
    const response = await fetchFn(delivery.url, {
      method: "POST",
      body: delivery.body,
      headers: {
        "content-type": "application/json",
        "user-agent": `rivet/${VERSION}`,
        ...delivery.headers,
      },
      redirect: "manual",
      signal: AbortSignal.any([deadline.signal, attempt.signal]),
    });
    await response.body?.cancel();
    if (response.status >= 200 && response.status < 300) return;
    const after = Number(response.headers.get("retry-after") ?? NaN);
    if (Number.isFinite(after) && after >= 0) retryAfterMs = Math.min(after * 1000, 10_000);
    throw new HttpStatusError(response.status);
  });
}

/** How {@linkcode sendNotifications} reaches the outside. */
export interface NotifyOptions {
  /** The outcome's `per_export` entry of `rivet run --json`. */
  readonly summarize: (o: Outcome) => Readonly<Record<string, unknown>>;
  /** Reads an environment variable (undefined when unset or not readable). */
  readonly env: (name: string) => string | undefined;
  /** Receives each `notify.failed` warning (redacted, URL as host only). */
  readonly warn: (warning: { code: "notify.failed"; message: string }) => void;
  /** Caps every target's deadline (e.g. after Ctrl-C), in milliseconds. */
  readonly maxDeadlineMs?: number;
  /** For tests; the global fetch by default. */
  readonly fetch?: typeof fetch;
}

/** Slack's deadline (the Rust tool's 10 s timeout, stretched to allow retries). */
const SLACK_DEADLINE_MS = 30_000;

/**
 * Sends the run's notifications: for each outcome, one POST per target whose `on` list names
 * an event the outcome stands for. All targets are sent concurrently. Never throws.
 *
 * @param spec The config's `notifications` (nothing is sent without it).
 * @param outcomes The run's outcomes.
 * @param watch What the run's events said about each export.
 * @param options Summary, environment, warning sink.
 */
export async function sendNotifications(
  spec: NotificationsSpec | undefined,
  outcomes: readonly Outcome[],
  watch: NotificationWatch,
  options: NotifyOptions,
): Promise<void> {
  if (spec === undefined) return;
  const sends: Promise<void>[] = [];
  for (const o of outcomes) {
    const signals = watch.signals(o);
    const events = outcomeEvents(o, signals);
    const wanted = (on: readonly NotifyEvent[]) => events.some((e) => on.includes(e));
    if (spec.slack && wanted(spec.slack.on)) {
      sends.push(deliver("notifications.slack", o, options, () => ({
        url: spec.slack?.webhookUrl?.secret ?? urlFromEnv(spec.slack!.webhookUrlEnv!, options),
        body: slackBody(o, signals),
        headers: {},
        deadlineMs: SLACK_DEADLINE_MS,
      })));
    }
    const webhook = spec.webhook;
    if (webhook && wanted(webhook.on)) {
      sends.push(deliver("notifications.webhook", o, options, async () => {
        const url = webhook.urlFile !== undefined
          ? await urlFromFile(webhook.urlFile)
          : urlFromEnv(webhook.urlEnv!, options);
        const body = webhookBody(o, signals, options.summarize(o));
        return {
          url,
          body,
          headers: {
            "x-rivet-event": events.filter((e) => webhook.on.includes(e)).join(","),
            "x-rivet-delivery": crypto.randomUUID(),
            ...await signature(webhook.secretEnv, body, options),
          },
          deadlineMs: webhook.timeoutS * 1000,
        };
      }));
    }
  }
  await Promise.all(sends);
}

/** A notification that cannot be sent as configured (unset variable, plain http). */
class NotifySetupError extends Error {}

function urlFromEnv(name: string, options: NotifyOptions): string {
  const url = options.env(name)?.trim();
  if (!url) throw new NotifySetupError(`variable ${name} is not set`);
  return url;
}

async function urlFromFile(path: string): Promise<string> {
  try {
    const url = (await readInputText(path, { maxBytes: INPUT_LIMITS.secret })).trim();
    if (url !== "") return url;
  } catch (error) {
    throw new NotifySetupError(`url_file ${path} cannot be read: ${(error as Error).message}`);
  }
  throw new NotifySetupError(`url_file ${path} is empty`);
}

/** The signature headers: HMAC-SHA256 of `<timestamp>.<body>`, and the timestamp. */
async function signature(
  secretEnv: string | undefined,
  body: string,
  options: NotifyOptions,
): Promise<Record<string, string>> {
  if (secretEnv === undefined) return {};
  const secret = options.env(secretEnv);
  if (!secret) {
    throw new NotifySetupError(
      `variable ${secretEnv} (secret_env) is not set, and an unsigned body would be refused`,
    );
  }
  registerSecret(secret);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const mac = await hmacSha256Hex(secret, new TextEncoder().encode(`${timestamp}.${body}`));
  return { "x-rivet-timestamp": timestamp, "x-rivet-signature": `sha256=${mac}` };
}

/** Checks the URL, posts, and turns any failure into one warning. */
async function deliver(
  where: string,
  o: Outcome,
  options: NotifyOptions,
  prepare: () => Delivery | Promise<Delivery>,
): Promise<void> {
  const about = `${where}: the notification for export '${o.export}' (${o.runId})`;
  let shown = "the receiver";
  try {
    const delivery = await prepare();
    registerSecret(delivery.url);
    const url = parseUrl(delivery.url);
    shown = `${url.protocol}//${url.host}`;
    const deadlineMs = Math.min(delivery.deadlineMs, options.maxDeadlineMs ?? Infinity);
    await post({ ...delivery, deadlineMs }, options.fetch ?? fetch);
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? "no answer before the deadline"
      : hostsOnly((error as Error).message ?? String(error));
    options.warn({
      code: "notify.failed",
      message: redact(
        `${about} was not delivered to ${shown}: ${reason}; the export's result is unchanged`,
      ),
    });
  }
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new NotifySetupError("the configured URL is not a valid URL");
  }
  const loopback = isLoopbackHost(url.hostname);
  if (url.protocol === "https:" || (url.protocol === "http:" && loopback)) return url;
  throw new NotifySetupError(
    `${url.protocol}//${url.host} is refused: notifications go over https (plain http only ` +
      "to a loopback address)",
  );
}
