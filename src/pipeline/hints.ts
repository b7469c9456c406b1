/**
 * The rivet commands that error hints tell an operator to run, with the real config path, so
 * that a hint can be copied and run as it is.
 *
 * Layer: pipeline. Pure.
 *
 * @module
 */

/**
 * Quotes a word for a POSIX shell when it needs it.
 *
 * @param word A path or name.
 * @returns The word, single-quoted unless it holds only characters a shell leaves alone.
 *
 * @example
 * ```ts
 * import { shellWord } from "./hints.ts";
 * if (shellWord("/etc/rivet/plan.yaml") !== "/etc/rivet/plan.yaml") throw new Error();
 * if (shellWord("my plan's.yaml") !== "'my plan'\\''s.yaml'") throw new Error();
 * ```
 */
export function shellWord(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * `rivet <command> -c <config> -e <export><extra>`; without a config path (library use) the
 * `-c` part is left out.
 *
 * @param command E.g. `run` or `state reset-chunks`.
 * @param exportName The export.
 * @param configPath The config file, when known.
 * @param extra Flags after the export, e.g. ` --resume`.
 * @returns The command line.
 *
 * @example
 * ```ts
 * import { rivetCommand } from "./hints.ts";
 * const line = rivetCommand("run", "orders", "/srv/plan.yaml", " --resume");
 * if (line !== "rivet run -c /srv/plan.yaml -e orders --resume") throw new Error(line);
 * ```
 */
export function rivetCommand(
  command: string,
  exportName: string,
  configPath: string | undefined,
  extra = "",
): string {
  const config = configPath === undefined ? "" : ` -c ${shellWord(configPath)}`;
  return `rivet ${command}${config} -e ${shellWord(exportName)}${extra}`;
}
