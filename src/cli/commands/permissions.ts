/**
 * `rivet permissions`: the narrowest `deno run` command line that runs a plan, or with
 * `--for binary` the compiled binary's `rivet run` with its `--allow-*` flags. The grants come
 * from `engines/permissions.ts`, the code that already narrows each `--parallel-export-processes`
 * child and each export worker, merged over the selected exports (the main thread must hold what
 * its workers get). Paths are absolute, so the printed command works from any working directory;
 * only variable names are printed, never their values, and the config path is printed as given on
 * the command line (made absolute).
 *
 * Layer: cli.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../core/errors.ts";
import type { ConfigSpec, ExportSpec } from "../../core/spec.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { processEnv } from "../../engines/openers.ts";
import {
  type ExportNeeds,
  needsToPermissions,
  planNeeds,
  toDenoFlags,
} from "../../engines/permissions.ts";
import { redact } from "../../_util/redact.ts";
import { runGrantFlags } from "../../engines/grants.ts";
import { BUNDLED } from "../../_util/bundle.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { parseParams } from "./run.ts";

/** Options parsed for `rivet permissions`. */
export interface PermissionsFlags {
  readonly config: string;
  readonly export?: readonly string[];
  readonly param?: readonly string[];
  readonly format?: "text" | "json";
  /** `deno`: a `deno run` command line; `binary`: `rivet run` of the compiled binary. */
  readonly for?: "deno" | "binary";
}

/** One flag of the command and why the plan needs it. */
interface Grant {
  readonly flag: string;
  readonly why: string;
}

/** What `--format json` prints. */
export interface PermissionsReport {
  /** Every flag between `deno run` and the script, in order (`--for binary`: after `run`). */
  readonly flags: string[];
  readonly net: string[];
  readonly read: string[];
  readonly write: string[];
  /** Variable names the plan names or its clients read. */
  readonly env: string[];
  /** Every variable is read (the Azure or SQL Server client): `--allow-env` without a list. */
  readonly all_env: boolean;
  readonly sys: string[];
  /** The whole command line as arguments, `deno` (or `rivet` with `--for binary`) first. */
  readonly command: string[];
}

/** rivet's entry script and config beside it, when rivet runs from source files. */
function rivetFiles(): { cli: string; denoJson: string } {
  const cli = new URL("../../../cli.ts", import.meta.url);
  if (cli.protocol !== "file:" || BUNDLED) {
    throw new ConfigError(
      "rivet permissions prints a 'deno run' command line, and this rivet is a compiled binary",
      {
        code: "permissions.not_from_source",
        hint: "for the binary's own flags use --for binary; for a deno run command, run it from " +
          "a rivet checkout (deno run -A cli.ts permissions -c …)",
      },
    );
  }
  return {
    cli: fileURLToPath(cli),
    denoJson: fileURLToPath(new URL("../../../deno.json", import.meta.url)),
  };
}

/** Groups entries by reason: `reason: a, b`. */
function explain(entries: ReadonlyMap<string, string>): string {
  const by = new Map<string, string[]>();
  for (const [entry, why] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
    by.set(why, [...by.get(why) ?? [], entry]);
  }
  return [...by].map(([why, list]) => `${why}: ${list.join(", ")}`).join("; ");
}

/** The flags of the run, each with its reason. */
function grants(config: ConfigSpec, specs: readonly ExportSpec[], needs: ExportNeeds): Grant[] {
  const files = rivetFiles();
  const out: Grant[] = [
    { flag: "--no-prompt", why: "a missing grant fails with the flag to add instead of asking" },
    {
      flag: `--config=${files.denoJson}`,
      why: "rivet's import map, whatever the working directory",
    },
  ];
  const workers = specs.filter((s) => s.mode === "chunked" && s.parallel > 1);
  if (workers.length > 0) {
    out.push({
      flag: "--unstable-worker-options",
      why: `narrowed chunk workers of ${workers.map((s) => `'${s.name}'`).join(", ")} (parallel:)`,
    });
  }
  // toDenoFlags is what a --parallel-export-processes child gets: the same rendering here.
  out.push(...explained(toDenoFlags(needsToPermissions(needs)), needs));
  if (config.parallelExportProcesses) {
    out.push({
      flag: `--allow-run=${Deno.execPath()}`,
      why: "parallel_export_processes: each export runs in a child deno process",
    });
  }
  return out;
}

/** Each `--allow-*` flag with the reasons of its entries. */
function explained(flags: readonly string[], needs: ExportNeeds): Grant[] {
  return flags.map((flag) => {
    const kind = /^--allow-(\w+)/.exec(flag)![1]!;
    const why = kind === "net"
      ? explain(needs.net)
      : kind === "read"
      ? explain(needs.read)
      : kind === "write"
      ? explain(needs.write)
      : kind === "env"
      ? (needs.allEnv
        ? "the Azure or SQL Server client reads the whole environment; named: "
        : "") + explain(needs.env)
      : "the object store's or SQL Server's client (user agent, home folder, host name)";
    return { flag, why };
  });
}

/** Quotes an argument for a POSIX shell when it holds anything beyond a safe set. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `rivet permissions`.
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 0, or the class of the error that stopped it.
 */
export async function permissionsCommand(
  flags: PermissionsFlags,
  ctx: CommandContext,
): Promise<number> {
  try {
    const params = parseParams(flags.param ?? []);
    const configPath = resolve(flags.config);
    const config = await loadConfig(configPath, { params, signal: ctx.signal });
    for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
    const specs = selectExports(config, flags.export ?? []);
    for (const spec of specs) {
      const d = spec.destination;
      const path = d.path ?? d.prefix ?? ".";
      if (d.kind === "local" && !isAbsolute(path)) {
        // Relative destination paths start at the working directory (as `rivet run` resolves
        // them): the grants below name the folder under this one.
        ctx.io.err(
          `Warning: export '${spec.name}': destination path '${path}' is relative to the ` +
            `working directory (${Deno.cwd()}): run the command from there, or make the path ` +
            "absolute\n",
        );
      }
    }
    const needs = await planNeeds(config, specs, { cwd: Deno.cwd(), env: processEnv, params });
    const runArgs = [
      "run",
      "-c",
      configPath,
      ...(flags.export ?? []).flatMap((e) => ["-e", e]),
      ...(flags.param ?? []).flatMap((p) => ["-p", p]),
    ];
    const binary = (flags.for ?? (Deno.build.standalone || BUNDLED ? "binary" : "deno")) ===
      "binary";
    // The binary takes the grants as `rivet run` flags, checked before the run starts; its
    // `--allow-sys` and worker options are fixed when it is built.
    const list = binary ? explained(runGrantFlags(needs), needs) : grants(config, specs, needs);
    const command = binary
      ? ["rivet", ...runArgs, ...list.map((g) => g.flag)]
      : ["deno", "run", ...list.map((g) => g.flag), rivetFiles().cli, ...runArgs];
    if (flags.format === "json") {
      const report: PermissionsReport = {
        flags: list.map((g) => g.flag),
        net: [...needs.net.keys()].sort(),
        read: [...needs.read.keys()].sort(),
        write: [...needs.write.keys()].sort(),
        env: [...needs.env.keys()].sort(),
        all_env: needs.allEnv,
        sys: [...needs.sys],
        command,
      };
      ctx.io.out(redact(JSON.stringify(report, null, 2)) + "\n");
      return 0;
    }
    const lines = [command.map(shellWord).join(" "), ""];
    for (const g of list) lines.push(`${g.flag.split("=")[0]}: ${g.why}`);
    ctx.io.out(redact(lines.join("\n")) + "\n");
    return 0;
  } catch (error) {
    return reportError(error, ctx);
  }
}
