/**
 * What `rivet --version` says about the build: the version, the commit it was built from and the
 * target. `scripts/compile.ts` builds each binary from a generated entry that sets
 * `globalThis.__RIVET_BUILD__` before starting the CLI; run from source there is no such record,
 * and the line says so.
 *
 * Layer: cli.
 *
 * @module
 */
import { VERSION } from "../core/version.ts";

/** The record a compiled build carries. */
export interface BuildInfo {
  /** Commit the binary was built from (`git rev-parse`, `-dirty` with local changes). */
  readonly commit: string;
  /** `deno compile --target` triple. */
  readonly target: string;
}

/** The global a compiled build sets (see `scripts/compile.ts`). */
export const BUILD_INFO_GLOBAL = "__RIVET_BUILD__";

/**
 * The build record, when this is a compiled build.
 *
 * @returns The record, or undefined when run from source.
 */
export function buildInfo(): BuildInfo | undefined {
  const value = (globalThis as Record<string, unknown>)[BUILD_INFO_GLOBAL] as
    | Partial<BuildInfo>
    | undefined;
  if (typeof value?.commit !== "string" || typeof value.target !== "string") return undefined;
  return { commit: value.commit, target: value.target };
}

/**
 * The `--version` line: `rivet 0.1.0 (commit 1a2b3c4d5e6f, x86_64-unknown-linux-gnu)`, or
 * `rivet 0.1.0 (from source, <this machine's target>)`.
 *
 * @param info The build record (default: this process's).
 * @returns One line.
 *
 * @example
 * ```ts
 * import { versionLine } from "./build_info.ts";
 * const line = versionLine({ commit: "abc", target: "aarch64-apple-darwin" });
 * if (!line.endsWith("(commit abc, aarch64-apple-darwin)")) throw new Error(line);
 * ```
 */
export function versionLine(info: BuildInfo | undefined = buildInfo()): string {
  return info === undefined
    ? `rivet ${VERSION} (from source, ${Deno.build.target})`
    : `rivet ${VERSION} (commit ${info.commit}, ${info.target})`;
}
