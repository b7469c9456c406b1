/**
 * Where a `mode: cdc` export resumes: the log position after the last transaction of its last
 * committed part, and the sequence number of its next part. Kept in the state store under the
 * export's cursor (name and identity), or in the file `cdc.checkpoint` names (written to a
 * temporary file, synced, then renamed over the old one, so a crash leaves the old or the new
 * checkpoint, never a torn one).
 *
 * The part sequence lives in the checkpoint so that a part committed but not yet checkpointed
 * (a crash in between) is written again under the same name by the next run, replacing the
 * copy that no checkpoint covers: its changes are re-read from the older position.
 *
 * Layer: pipeline.
 *
 * @module
 */
import type { CdcPosition } from "../core/cdc.ts";
import { ConfigError, PermanentError, RivetError } from "../core/errors.ts";
import type { ExportJob } from "../core/job.ts";
import type { SourceKind } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { readFileIfPresent, writeFileAtomic } from "../_util/atomic_file.ts";
import { readJobCursor } from "./cursor_identity.ts";

/** A saved position. */
export interface CdcCheckpoint {
  /** The source engine that produced the position (a position means nothing to another). */
  readonly engine: SourceKind;
  /** Where the next run starts reading (a transaction end). */
  readonly position: CdcPosition;
  /** Sequence number of the next part (`cdc-<seq>`). */
  readonly nextPart: number;
  /** When it was saved (ISO-8601 UTC). */
  readonly savedAt: string;
}

/** Largest checkpoint file read back: a position is a few dozen bytes. */
const MAX_CHECKPOINT_BYTES = 64 * 1024;

/** The file `cdc.checkpoint` names, absolute (relative paths start at the config's folder). */
export function checkpointFile(job: Pick<ExportJob, "spec" | "configDir">): string | undefined {
  const path = job.spec.cdc?.checkpoint;
  if (path === undefined) return undefined;
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) ? path : `${job.configDir}/${path}`;
}

function corrupt(where: string, exportName: string, why: string, reset: string): ConfigError {
  return new ConfigError(
    `export '${exportName}': the cdc checkpoint in ${where} ${why}, so this run would not know ` +
      "where to start",
    {
      code: "cdc.checkpoint_corrupt",
      hint: `${reset}; the next run then starts at the log's current end (export the table in ` +
        "full once to cover the gap)",
    },
  );
}

/**
 * Parses a checkpoint's JSON text. Also accepts a bare position object (a file written by hand
 * or by rivet-cli, which stores only the position): its next part is then 0.
 *
 * @param text The JSON.
 * @param facts Export name, where it was read from, and the reset advice.
 * @returns The checkpoint.
 * @throws {ConfigError} `cdc.checkpoint_corrupt` when it is not one.
 */
export function parseCheckpoint(
  text: string,
  facts: { exportName: string; where: string; reset: string; engine: SourceKind },
): CdcCheckpoint {
  const bad = (why: string) => corrupt(facts.where, facts.exportName, why, facts.reset);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad("is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad("is not a JSON object");
  }
  const record = value as Record<string, unknown>;
  const position = "position" in record ? record.position : record;
  if (typeof position !== "object" || position === null || Array.isArray(position)) {
    throw bad("has no position");
  }
  const flat: Record<string, string | number> = {};
  for (const [key, item] of Object.entries(position as Record<string, unknown>)) {
    if (typeof item !== "string" && typeof item !== "number") {
      throw bad(`has a position field '${key}' that is not a string or a number`);
    }
    flat[key] = item;
  }
  if (Object.keys(flat).length === 0) throw bad("has an empty position");
  const engine = "position" in record ? record.engine : facts.engine;
  if (engine !== facts.engine) {
    throw bad(`was written for a ${String(engine)} source, not ${facts.engine}`);
  }
  const nextPart = "position" in record ? record.next_part : 0;
  if (typeof nextPart !== "number" || !Number.isSafeInteger(nextPart) || nextPart < 0) {
    throw bad("has no valid next_part");
  }
  const savedAt = typeof record.saved_at === "string" ? record.saved_at : "";
  return { engine: facts.engine, position: flat, nextPart, savedAt };
}

/** The JSON text of a checkpoint (what the file and the state store hold). */
export function checkpointText(checkpoint: CdcCheckpoint): string {
  return JSON.stringify({
    engine: checkpoint.engine,
    position: checkpoint.position,
    next_part: checkpoint.nextPart,
    saved_at: checkpoint.savedAt,
  });
}

/** Reads and writes one export's checkpoint. */
export interface CheckpointStore {
  /** Where it lives, for messages (`state` or the file's path). */
  readonly where: string;
  load(signal: AbortSignal): Promise<CdcCheckpoint | undefined>;
  save(checkpoint: CdcCheckpoint): Promise<void>;
}

/**
 * The checkpoint store of a cdc job: the file of `cdc.checkpoint`, else the state store.
 *
 * @param job The export.
 * @param state The run's state store.
 * @returns Its store.
 */
export function checkpointStore(job: ExportJob, state: StateStore): CheckpointStore {
  const name = job.spec.name;
  const engine = job.source.kind;
  const file = checkpointFile(job);
  if (file !== undefined) {
    return {
      where: file,
      async load(signal) {
        let text: string | undefined;
        try {
          text = await readFileIfPresent(file, { maxBytes: MAX_CHECKPOINT_BYTES, signal });
        } catch (error) {
          if (error instanceof RivetError) throw error;
          throw new PermanentError(
            `export '${name}': could not read the cdc checkpoint ${file}: ${
              error instanceof Error ? error.message : String(error)
            }`,
            {
              code: "cdc.checkpoint_unreadable",
              hint: "point cdc.checkpoint at a file rivet can read and write (it is created " +
                "on the first run)",
            },
          );
        }
        if (text === undefined || text.trim() === "") return undefined;
        return parseCheckpoint(text, {
          exportName: name,
          where: file,
          engine,
          reset: `delete ${file}`,
        });
      },
      save: (checkpoint) => saveFile(file, checkpointText(checkpoint) + "\n", name),
    };
  }
  return {
    where: "the state store",
    async load() {
      const entry = await readJobCursor(state, job);
      const text = entry?.lastCursorValue;
      if (text === undefined || text === null) return undefined;
      return parseCheckpoint(text, {
        exportName: name,
        where: "the state store",
        engine,
        reset: `rivet state reset -c ${job.configPath} -e ${name}`,
      });
    },
    save: (checkpoint) =>
      state.advanceCursor({
        exportName: name,
        configIdentity: job.configIdentity,
        lastCursorValue: checkpointText(checkpoint),
        lastRunAt: checkpoint.savedAt,
      }),
  };
}

/** Saves the checkpoint file, naming the export and the fix when it cannot. */
async function saveFile(path: string, text: string, exportName: string): Promise<void> {
  try {
    await writeFileAtomic(path, text);
  } catch (error) {
    throw new PermanentError(
      `export '${exportName}': could not save the cdc checkpoint ${path}: ${
        error instanceof Error ? error.message : String(error)
      }`,
      {
        code: "cdc.checkpoint_write_failed",
        hint: "make the checkpoint's folder writable (the part already committed is written " +
          "again under the same name by the next run)",
      },
    );
  }
}
