/**
 * `rivet init`: scaffolds a commented `rivet.yaml` from a live database (or, with `--discover`,
 * prints a JSON inventory of it). The connection comes from exactly one of `--source URL`,
 * `--source-env VAR`, `--source-file PATH`, parsed and checked (URL forms, TLS-or-loopback
 * policy) as a config's `source` is; the URL itself is never written. The catalog is read by
 * `pipeline/discover.ts`, the decisions and the YAML are pure (`plan/inventory.ts`,
 * `plan/scaffold.ts`).
 *
 * `-o PATH` never replaces an existing file unless `--force` (a config is often edited by
 * hand); the file appears whole or not at all (written aside, then linked or renamed in place).
 *
 * Layer: cli.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { ConfigError, toErrorInfo } from "../../core/errors.ts";
import type { ExportMode, SourceKind, SourceSpec, TlsMode, TlsSpec } from "../../core/spec.ts";
import {
  checkTlsPolicy,
  parseConnectionUrl,
  readSourceUrl,
  sourceKindOfUrl,
} from "../../config/mod.ts";
import { openSource } from "../../sources/mod.ts";
import { discoverTables, type TableRef } from "../../pipeline/discover.ts";
import { analyzeTable, discoveryJson } from "../../plan/inventory.ts";
import {
  renderScaffold,
  type ScaffoldConnection,
  type ScaffoldDestination,
} from "../../plan/scaffold.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";

/** Options parsed for `rivet init`. */
export interface InitFlags {
  readonly source?: string;
  readonly sourceEnv?: string;
  readonly sourceFile?: string;
  /** `--table [schema.]T` (repeatable). */
  readonly table?: readonly string[];
  readonly schema?: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly output?: string;
  readonly force?: boolean;
  readonly discover?: boolean;
  readonly mode?: ExportMode;
  readonly s3Bucket?: string;
  readonly s3Region?: string;
  readonly gcsBucket?: string;
  readonly gcsCredentialsFile?: string;
  readonly azureContainer?: string;
  readonly azureAccount?: string;
  readonly tlsMode?: TlsMode;
  readonly tlsCaFile?: string;
}

/** The env variable the scaffold names when the URL was given with `--source`. */
export const DEFAULT_URL_ENV = "DATABASE_URL";

const TABLE_REF = /^(?:([^.]+)\.)?([^.]+)$/;

/**
 * Parses `--table` values: `name` or `schema.name`.
 *
 * @param values The flag values.
 * @returns The references.
 * @throws {ConfigError} `init.invalid_table` for an empty part or more than one dot.
 */
export function parseTableRefs(values: readonly string[]): TableRef[] {
  return values.map((value) => {
    const m = TABLE_REF.exec(value.trim());
    if (!m) {
      throw new ConfigError(`--table '${value}' is not 'name' or 'schema.name'`, {
        code: "init.invalid_table",
        hint: "give one table per --table, e.g. --table public.orders --table customers",
      });
    }
    return { ...(m[1] === undefined ? {} : { schema: m[1] }), name: m[2]! };
  });
}

/** A path given on the command line, as the scaffold must write it: relative to its folder. */
function relocate(path: string, output: string | undefined): string {
  if (output === undefined || isAbsolute(path)) return path;
  const rel = relative(dirname(resolve(output)), resolve(path));
  return rel === "" ? "." : rel;
}

/** The source URL from the flag that gives it, read now. */
export async function sourceUrl(
  flags: Pick<InitFlags, "source" | "sourceEnv" | "sourceFile">,
): Promise<string> {
  if (flags.source !== undefined) {
    return await readSourceUrl({ form: "url", url: { secret: flags.source } }, {
      configDir: Deno.cwd(),
    });
  }
  if (flags.sourceEnv !== undefined) {
    const value = Deno.env.get(flags.sourceEnv);
    if (value === undefined || value.trim() === "") {
      throw new ConfigError(`environment variable '${flags.sourceEnv}' (--source-env) is not set`, {
        code: "config.missing_env",
        hint: `export ${flags.sourceEnv} with the database URL, or pass --source-file`,
      });
    }
    return await readSourceUrl({ form: "url_env", env: flags.sourceEnv }, {
      configDir: Deno.cwd(),
    });
  }
  try {
    return await readSourceUrl({ form: "url_file", path: flags.sourceFile! }, {
      configDir: Deno.cwd(),
    });
  } catch (error) {
    const info = toErrorInfo(error);
    throw new ConfigError(info.message.replace(/source\.url_file/, "--source-file"), {
      code: info.code,
      cause: error,
      hint: "the path is relative to the current folder; the file holds one URL",
    });
  }
}

function tlsSpec(flags: InitFlags): TlsSpec | undefined {
  if (flags.tlsMode === undefined) return undefined;
  return {
    mode: flags.tlsMode,
    ...(flags.tlsCaFile === undefined ? {} : { caFile: resolve(flags.tlsCaFile) }),
    acceptInvalidCerts: false,
    acceptInvalidHostnames: false,
  };
}

function connectionForm(flags: InitFlags): ScaffoldConnection {
  if (flags.sourceFile !== undefined) {
    return { form: "url_file", path: relocate(flags.sourceFile, flags.output) };
  }
  return flags.sourceEnv !== undefined
    ? { form: "url_env", env: flags.sourceEnv, fromUrl: false }
    : { form: "url_env", env: DEFAULT_URL_ENV, fromUrl: true };
}

function destination(flags: InitFlags): ScaffoldDestination {
  if (flags.s3Bucket !== undefined) {
    return {
      kind: "s3",
      bucket: flags.s3Bucket,
      ...(flags.s3Region === undefined ? {} : { region: flags.s3Region }),
    };
  }
  if (flags.gcsBucket !== undefined) {
    return {
      kind: "gcs",
      bucket: flags.gcsBucket,
      ...(flags.gcsCredentialsFile === undefined
        ? {}
        : { credentialsFile: relocate(flags.gcsCredentialsFile, flags.output) }),
    };
  }
  if (flags.azureContainer !== undefined && flags.azureAccount !== undefined) {
    return { kind: "azure", container: flags.azureContainer, account: flags.azureAccount };
  }
  return { kind: "local" };
}

/**
 * Writes `text` to `path` whole or not at all: a file beside it, then a hard link (fails if the
 * path exists) or, with `force`, a rename over it.
 */
async function writeOutput(path: string, text: string, force: boolean): Promise<void> {
  const tmp = join(dirname(resolve(path)), `.${basename(path)}.rivet-init-${Deno.pid}.tmp`);
  try {
    await Deno.writeTextFile(tmp, text, { createNew: true });
  } catch (error) {
    throw new ConfigError(
      `cannot write '${path}': ${error instanceof Error ? error.message : String(error)}`,
      {
        code: "init.output_failed",
        cause: error,
        hint: "check that the folder exists and is writable",
      },
    );
  }
  try {
    if (force) await Deno.rename(tmp, path);
    else await Deno.link(tmp, path);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new ConfigError(`'${path}' already exists; it was left unchanged`, {
        code: "init.output_exists",
        hint: "pass --force to replace it, or choose another -o path",
      });
    }
    throw new ConfigError(
      `cannot write '${path}': ${error instanceof Error ? error.message : String(error)}`,
      { code: "init.output_failed", cause: error },
    );
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function refuseExisting(path: string | undefined, force: boolean): Promise<void> {
  if (path === undefined || force) return;
  try {
    await Deno.lstat(path);
  } catch {
    return;
  }
  throw new ConfigError(`'${path}' already exists; it was left unchanged`, {
    code: "init.output_exists",
    hint: "pass --force to replace it, or choose another -o path",
  });
}

/**
 * Runs `rivet init`.
 *
 * @param flags The parsed flags (the flag combinations were checked by the command tree).
 * @param ctx Output and abort signal.
 * @returns The exit code: 0, or the class of the error.
 */
export async function initCommand(flags: InitFlags, ctx: CommandContext): Promise<number> {
  try {
    // Before connecting: a refused -o costs no database round trip.
    await refuseExisting(flags.output, flags.force === true);
    const url = await sourceUrl(flags);
    const kind: SourceKind = sourceKindOfUrl(url);
    const info = parseConnectionUrl(url, kind);
    const tls = tlsSpec(flags);
    try {
      for (const w of checkTlsPolicy(info, tls, kind).warnings) ctx.io.err(`Warning: ${w}\n`);
    } catch (error) {
      const e = toErrorInfo(error);
      if (e.code !== "source.tls_required") throw error;
      throw new ConfigError(e.message.replace("the source has no tls: block", "no --tls-mode"), {
        code: e.code,
        hint: "pass --tls-mode require (or verify-full with --tls-ca-file), or --tls-mode " +
          "disable to opt in to plaintext explicitly",
      });
    }
    const spec: SourceSpec = {
      kind,
      connection: { form: "url", url: { secret: url } },
      ...(tls === undefined ? {} : { tls }),
    };
    await using source = await openSource(spec, info, {
      signal: ctx.signal,
      onWarning: (w) => ctx.io.err(`Warning: ${w.message}\n`),
    });
    const { schema, tables } = await discoverTables(source, kind, {
      signal: ctx.signal,
      ...(flags.schema === undefined ? {} : { schema: flags.schema }),
      ...(flags.table === undefined ? {} : { tables: parseTableRefs(flags.table) }),
      include: flags.include ?? [],
      exclude: flags.exclude ?? [],
    });
    if (tables.length === 0) {
      throw new ConfigError(
        `no table or view matched in schema '${schema}'` +
          (flags.include || flags.exclude ? " with the --include/--exclude globs given" : ""),
        {
          code: "init.no_tables",
          hint: "check --schema and the globs (`*` and `?`, case-sensitive); " +
            "rivet init --discover lists what the login can see",
        },
      );
    }
    const mode = flags.mode;
    const analyses = tables.map((t) => analyzeTable(kind, t, mode === undefined ? {} : { mode }));
    const inventory = { kind, host: info.host, database: info.database, tables };
    let text: string;
    let summary: string;
    if (flags.discover) {
      text = JSON.stringify(discoveryJson(inventory, analyses), null, 2) + "\n";
      summary = `${tables.length} table${tables.length === 1 ? "" : "s"}`;
    } else {
      const scaffold = renderScaffold(inventory, analyses, {
        connection: connectionForm(flags),
        destination: destination(flags),
        ...(flags.tlsMode === undefined ? {} : {
          tls: {
            mode: flags.tlsMode,
            ...(flags.tlsCaFile === undefined
              ? {}
              : { caFile: relocate(flags.tlsCaFile, flags.output) }),
          },
        }),
        schema,
      });
      if (scaffold.exports === 0) {
        throw new ConfigError(
          `none of the ${tables.length} selected tables can be exported: ` +
            scaffold.skipped.join(", "),
          {
            code: "init.no_tables",
            hint: "run rivet init --discover to see why (notes, unsupported_columns)",
          },
        );
      }
      text = scaffold.yaml;
      summary = `${scaffold.exports} export${scaffold.exports === 1 ? "" : "s"}` +
        (scaffold.skipped.length > 0 ? ` (${scaffold.skipped.length} table(s) left out)` : "");
    }
    if (flags.output === undefined) {
      ctx.io.out(text);
      return 0;
    }
    await writeOutput(flags.output, text, flags.force === true);
    ctx.io.err(
      redact(`Wrote ${flags.output}: ${summary}.`) +
        (flags.discover ? "\n" : `\nNext: rivet doctor -c ${flags.output}\n`),
    );
    return 0;
  } catch (error) {
    return reportError(error, ctx);
  }
}
