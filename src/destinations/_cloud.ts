/**
 * What the three object-store destinations (S3, GCS, Azure) share beyond key rules: the warning
 * sink their retries report to, the text of a retry warning, the listing of staging objects, and
 * the all-or-nothing move by copy and delete (none of these stores can rename).
 *
 * Layer: destinations (private). Imports core/ only.
 *
 * @module
 */
import type { StagingObject } from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import { finalKeyOfStaging } from "./_keys.ts";

/**
 * Receives a destination's warnings: a message without secrets that does not name the export
 * (the engine adds it), and a stable code: `destination.retrying` for a request about to be
 * retried, `destination.staging_left` for a staging object that could not be deleted, else
 * `destination.warning`.
 */
export type DestinationWarn = (message: string, code?: string) => void;

/** The default sink: stderr, as a line. */
export const consoleWarn: DestinationWarn = (message) => console.warn(message);

/**
 * The message of a retry warning: what failed, why, which retry follows and after how long.
 *
 * @param facts Store, operation, target, short reason, the retry about to run (1-based) out of
 *   how many, and the delay before it.
 * @returns E.g. `S3 upload part 2 of 's3://b/k' failed (HTTP 503 SlowDown); retry 1/5 in 230 ms`.
 *
 * @example
 * ```ts
 * import { retryMessage } from "./_cloud.ts";
 * const text = retryMessage({ store: "GCS", action: "upload", target: "gs://b/a.csv",
 *   reason: "HTTP 503", retry: 1, of: 5, delayMs: 212.7 });
 * if (text !== "GCS upload 'gs://b/a.csv' failed (HTTP 503); retry 1/5 in 213 ms") throw new Error(text);
 * ```
 */
export function retryMessage(facts: {
  store: string;
  action: string;
  target: string;
  reason: string;
  retry: number;
  of: number;
  delayMs: number;
}): string {
  return `${facts.store} ${facts.action} '${facts.target}' failed (${facts.reason}); retry ` +
    `${facts.retry}/${facts.of} in ${Math.round(facts.delayMs)} ms`;
}

/** The steps of {@linkcode moveByCopy}, each bound to one store. */
export interface MoveSteps {
  /** Server-side copy to the target, refusing to replace an object; verified when it resolves. */
  copy(): Promise<void>;
  /** Deletes the source object (that version only, where the store can say so). */
  removeSource(): Promise<void>;
  /** Whether the source object is still there, asked after its delete failed. */
  sourceExists(): Promise<boolean>;
  /** Deletes the copy again (best-effort clean-up deadline of its own). */
  removeCopy(): Promise<void>;
  /** `s3://…`, `gs://…` or `azure://…` of both keys, for messages. */
  readonly from: string;
  readonly to: string;
}

/**
 * Moves an object by copy and delete so that exactly one of the two names holds it afterwards:
 * when the delete of the source fails and the source is still there, the copy is deleted again
 * and the delete's error is thrown; when the source is gone (the delete took effect but its
 * answer was lost), the move is complete. When neither the check nor the roll-back succeed,
 * the copy is kept (deleting it could lose the only copy) and the error says the object may be
 * under both names. A kill between the copy and the delete leaves both, which is why resumes
 * quarantine into `_quarantine/` (never deleting) and `validate` reports unlisted objects.
 *
 * @param steps The store's operations.
 * @throws The copy's error (nothing changed), or the delete's error after a roll-back.
 * @throws {PermanentError} `destination.move_incomplete` when both names may hold the object.
 */
export async function moveByCopy(steps: MoveSteps): Promise<void> {
  await steps.copy();
  try {
    await steps.removeSource();
    return;
  } catch (error) {
    let present: boolean | undefined;
    try {
      present = await steps.sourceExists();
    } catch {
      present = undefined;
    }
    if (present === false) return;
    if (present === true) {
      try {
        await steps.removeCopy();
      } catch (cleanup) {
        throw incomplete(steps, error, cleanup);
      }
      throw error;
    }
    throw incomplete(steps, error, undefined);
  }
}

function incomplete(steps: MoveSteps, error: unknown, cleanup: unknown): PermanentError {
  const why = error instanceof Error ? error.message : String(error);
  const also = cleanup === undefined
    ? ""
    : `, and deleting the copy failed too (${
      cleanup instanceof Error ? cleanup.message : String(cleanup)
    })`;
  return new PermanentError(
    `moving '${steps.from}' to '${steps.to}' copied it but could not delete the source (${why})` +
      `${also}; the object may now be under both names: delete one of them by hand`,
    { code: "destination.move_incomplete", cause: error },
  );
}

/**
 * The staging objects (`dir/.<name>.tmp`) whose final name starts with `prefix`, found through a
 * store's raw listing (which, unlike `list`, shows staging keys). Only the folder of `prefix`
 * itself is looked at, not its sub-folders.
 *
 * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
 * @param listRaw Lists every object whose relative key starts with the given text.
 * @returns Staging key, final key and size of each.
 */
export async function* listStagingWith(
  prefix: string,
  listRaw: (rawPrefix: string) => AsyncIterable<{ key: string; size: number }>,
): AsyncIterable<StagingObject> {
  const slash = prefix.lastIndexOf("/");
  const folder = prefix.slice(0, slash + 1);
  for await (const object of listRaw(`${folder}.${prefix.slice(slash + 1)}`)) {
    if (object.key.indexOf("/", folder.length) >= 0) continue;
    const finalKey = finalKeyOfStaging(object.key);
    if (finalKey?.startsWith(prefix)) yield { key: object.key, finalKey, size: object.size };
  }
}
