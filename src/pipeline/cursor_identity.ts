/**
 * Reading an export's cursor under its identity (`plan/identity.ts`): the cursor stored for
 * this source and query, or one from a state file older than identities (taken over by the next
 * advance), or none. A cursor of the same export name under another identity means the folder's
 * state belongs to other data (another config reusing the name, or a changed source or query):
 * the run stops there with the two ways forward, instead of resuming from a foreign position
 * (which exported 0 rows with a ✓) or silently starting over (which duplicates every row).
 *
 * Layer: pipeline.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { ExportJob } from "../core/job.ts";
import type { CursorEntry, CursorStore } from "../core/state.ts";

/**
 * The cursor an incremental job resumes from.
 *
 * @param state The cursor role of the store.
 * @param job The export, with its identity and config path.
 * @returns The cursor, or undefined on the first run of this identity.
 * @throws {ConfigError} `state.cursor_identity_mismatch` when only another identity has one.
 */
export async function readJobCursor(
  state: Pick<CursorStore, "readCursor" | "listCursors">,
  job: Pick<ExportJob, "spec" | "configIdentity" | "configPath">,
): Promise<CursorEntry | undefined> {
  const name = job.spec.name;
  const own = await state.readCursor(name, job.configIdentity);
  if (own !== undefined) return own;
  const others = (await state.listCursors()).filter((c) =>
    c.exportName === name && c.configIdentity !== undefined &&
    c.configIdentity !== job.configIdentity
  );
  if (others.length === 0) return undefined;
  const config = job.configPath;
  throw new ConfigError(
    `export '${name}': the state next to the config holds a cursor of '${name}' for other data ` +
      `(identity ${others.map((c) => c.configIdentity).join(", ")}; this config's source and ` +
      `query give ${job.configIdentity}), so this run would not know where to start`,
    {
      code: "state.cursor_identity_mismatch",
      hint:
        `if you changed the source or the query on purpose and the position still holds, keep ` +
        `it: rivet state adopt -c ${config} -e ${name}; to export from the start: rivet state ` +
        `reset -c ${config} -e ${name}; if another config in this folder uses the name '${name}', ` +
        "rename one of the two exports",
    },
  );
}
