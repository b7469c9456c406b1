/**
 * Where a command that does not run an export finds its destination root, before opening it:
 * `rivet validate` fills the placeholders as the run that wrote the folder did (`--date`,
 * `--run-id`, or `--prefix` naming the folder itself), `rivet doctor` probes the folder above a
 * token only a run fills, and both name the root in messages the same way.
 *
 * Layer: pipeline. Imports core/ and plan/ only.
 *
 * @module
 */
import type { DestinationSpec, ExportSpec } from "../core/spec.ts";
import { resolveDestination } from "../plan/placeholders.ts";
import { localRoot } from "../plan/resolve.ts";

/** How `rivet validate` places an export's destination (its placeholder flags). */
export interface Placement {
  /** The day `{date}` stands for. */
  readonly at: Date;
  /** `--run-id`: the value of `{run_id}`. */
  readonly runId?: string | undefined;
  /** `--prefix`: the folder itself, instead of the configured path or prefix. */
  readonly prefix?: string | undefined;
}

/**
 * The export's destination with placeholders resolved as `rivet run` resolved them, or with
 * `--prefix` in place of the configured path/prefix.
 *
 * @param exp The export.
 * @param placement `--date`, `--run-id`, `--prefix`.
 * @returns The destination spec to open.
 */
export function placeDestination(exp: ExportSpec, placement: Placement): DestinationSpec {
  if (placement.prefix !== undefined) {
    return exp.destination.kind === "local"
      ? { ...exp.destination, path: placement.prefix }
      : { ...exp.destination, prefix: placement.prefix };
  }
  const spec = resolveDestination(exp.destination, { exportName: exp.name, at: placement.at });
  const runId = placement.runId;
  if (runId === undefined) return spec;
  return {
    ...spec,
    ...(spec.path === undefined ? {} : { path: spec.path.replaceAll("{run_id}", runId) }),
    ...(spec.prefix === undefined ? {} : { prefix: spec.prefix.replaceAll("{run_id}", runId) }),
  };
}

/**
 * The root `rivet doctor` probes: `{date}`/`{export}` filled, cut above a `{run_id}` or
 * `{partition}` token (filled only while a run writes).
 *
 * @param spec The configured destination.
 * @param exportName The export, for `{export}`.
 * @param at The day `{date}` stands for.
 * @returns The destination spec to probe.
 */
export function probeRoot(spec: DestinationSpec, exportName: string, at: Date): DestinationSpec {
  const filled = resolveDestination(spec, { exportName, at });
  const cut = (text: string) => {
    const token = text.search(/\{(run_id|partition)\}/);
    if (token < 0) return text;
    const slash = text.lastIndexOf("/", token);
    return slash < 0 ? "" : text.slice(0, slash + 1);
  };
  const local = (text: string) => cut(text) === "" ? "." : cut(text);
  if (filled.kind === "local") {
    return {
      ...filled,
      ...(filled.path === undefined ? {} : { path: local(filled.path) }),
      ...(filled.prefix === undefined ? {} : { prefix: local(filled.prefix) }),
    };
  }
  return { ...filled, ...(filled.prefix === undefined ? {} : { prefix: cut(filled.prefix) }) };
}

/**
 * A destination's root as a URI, known before it is opened (for messages about one that could
 * not be opened, and to tell destinations apart).
 *
 * @param spec The destination, placeholders resolved.
 * @param cwd The folder a relative local path is relative to (absolute).
 * @returns `file:///abs/dir`, `s3://bucket/prefix`, `gs://…`, `azure://account/container/…`
 *   or `stdout`.
 *
 * @example
 * ```ts
 * import { describeDestination } from "./destination_root.ts";
 * const spec = { kind: "s3", bucket: "b", prefix: "x/", allowAnonymous: false } as const;
 * const uri = describeDestination(spec, "/tmp");
 * if (uri !== "s3://b/x/") throw new Error(uri);
 * ```
 */
export function describeDestination(spec: DestinationSpec, cwd: string): string {
  const rest = spec.prefix ?? "";
  switch (spec.kind) {
    case "local":
      return `file://${localRoot(spec, cwd)}`;
    case "s3":
      return `s3://${spec.bucket ?? "?"}/${rest}`;
    case "gcs":
      return `gs://${spec.bucket ?? "?"}/${rest}`;
    case "azure":
      return `azure://${spec.accountName ?? "?"}/${spec.bucket ?? "?"}/${rest}`;
    case "stdout":
      return "stdout";
  }
}
