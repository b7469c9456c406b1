/**
 * Packages rivet as standalone binaries with `deno compile`, one per target, each with a
 * `<binary>.sha256` beside it in `sha256sum` format.
 *
 * ```sh
 * deno run -A scripts/compile.ts                                  # host target, dist/rivet-<host>
 * deno run -A scripts/compile.ts --target all                     # the four release targets
 * deno run -A scripts/compile.ts --target aarch64-apple-darwin --output build/rivet
 * ```
 *
 * Options: `--target <triple|all>` (repeatable; default the host), `--output <file>` (one target
 * only; default `<out-dir>/rivet-<target>`), `--out-dir <dir>` (default `dist`), `--entry <file>`
 * (default `cli.ts`). stdout gets one `sha256sum` line per binary; everything else goes to stderr.
 *
 * Each binary is built from a generated entry (`.build/rivet-<target>.ts`, removed afterwards)
 * that records the commit and target for `rivet --version` and then starts `cli.ts`.
 *
 * `deno compile` downloads the `denort` runtime for the target from Deno's release server. Where
 * that server is unreachable, set `DENORT_BIN` to a local denort (passed through the environment
 * unchanged); a failed compile without it says so. The full `deno` binary can stand in to check the packaging step, but the result
 * then behaves like `deno`, not like rivet: it treats rivet's arguments as a module to run.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "../src/engines/v8_flags.ts";
import { basename, dirname, isAbsolute, relative, resolve } from "node:path";
import { BUILD_INFO_GLOBAL } from "../src/cli/build_info.ts";
import { fileURLToPath } from "node:url";

/** Release targets (`deno compile --target` triples), in release-matrix order. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

/** A release target. */
export type Target = (typeof TARGETS)[number];

/**
 * Worker entry modules, relative to the repository root. `new Worker(new URL(...))` is not
 * followed by the module graph, so each must be passed with `--include` or the binary lacks it
 * and fails only when the worker starts; its own imports then follow.
 * - `chunk_worker.ts`: one chunk pipeline of the Web Worker engine (`parallel: N`).
 * - `export_worker.ts`: in a compiled binary, a `--parallel-export-processes` child runs its
 *   export inside a worker whose permissions are narrowed to that export, because the child
 *   process itself cannot be started with narrower `--allow-*` flags (a compiled binary's
 *   permissions are fixed at compile time).
 * - `md5_worker.ts`: the MD5 of a large part, hashed beside the thread that encodes it.
 *
 * A missing entry is an error, never a silent skip: the binary would build and then fail at run
 * time.
 */
export const WORKER_ENTRIES: readonly string[] = [
  "src/engines/chunk_worker.ts",
  "src/engines/export_worker.ts",
  "src/_util/md5_worker.ts",
];

/**
 * parquet-wasm's module, which `src/formats/_wasm.ts` reads with `Deno.readFile` (so it is data,
 * not part of the module graph). Today the whole `node_modules` tree is embedded anyway and the
 * bytes are deduplicated, so naming it costs nothing; it keeps the Parquet writer in the binary
 * if the packaging ever switches to `--exclude-unused-npm` or `--bundle`, which only keep what
 * the graph reaches.
 */
export const PARQUET_WASM_SPECIFIER = "parquet-wasm/esm/parquet_wasm_bg.wasm";

/**
 * Unstable features baked into the binary. Workers get narrowed permissions through
 * `new Worker(url, { deno: { permissions } })`, which Deno gates behind this flag; without it the
 * first such worker aborts the process ("Unstable API 'Worker.deno.permissions'").
 */
export const UNSTABLE_FLAGS: readonly string[] = ["--unstable-worker-options"];

/**
 * Permissions baked into the binary. A compiled binary takes no `--allow-*` flags at run time, so
 * the ceiling is fixed here, and workers narrow it per export at run time (a worker can never get
 * more than this).
 *
 * - `--allow-net`: database hosts (and later object stores) come from the config, unknown now.
 * - `--allow-read` / `--allow-write`: config, `query_file`, TLS files, the state database beside
 *   the config, outputs under any configured path.
 * - `--allow-env`: `${VAR}` placeholders, `url_env` / `password_env` and `RIVET_*` name arbitrary
 *   variables, and yaml reads `LOG_TOKENS` / `LOG_STREAM`; a name list cannot cover that.
 * - `--allow-run`, unscoped: `--parallel-export-processes` re-runs the binary itself
 *   (`Deno.execPath()`). Deno could scope it only to a path or a PATH-resolved name fixed now,
 *   but where the binary is installed, and under which name, is known only at run time (`./rivet`,
 *   a renamed file, a path not on PATH), so a scoped grant would make the flag fail wherever the
 *   binary was moved. Children are narrowed by their export worker instead.
 * - `--allow-sys` scoped to what the cloud SDKs read through `node:os` (rivet's own code calls no
 *   sys-gated API; it uses the ungated `Deno.memoryUsage()`): `osRelease` (the AWS, Azure and
 *   GCS user agents), `homedir` (AWS shared config, gcloud credentials), `hostname` and
 *   `networkInterfaces` (gcp-metadata's "am I on GCE" check), `userInfo` (home directory
 *   fallbacks). `tests/compiled/compile_test.ts` scans the graph: rivet's own modules must reach
 *   no sys-gated API, and this list must stay.
 * - No `--allow-ffi` (nor `-A`): no native libraries are loaded; `node:sqlite` is built in.
 */
export const PERMISSION_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=osRelease,homedir,hostname,networkInterfaces,userInfo",
];

/**
 * npm packages used only by the tests, the demo and the benchmarks (independent readers, the
 * embedded demo database, workflow validation, the JSON Schema checker). `deno compile` embeds the
 * whole `node_modules` tree, so without this list a binary carried ~500 MB of them (the Polars
 * and DuckDB native libraries); `rivet`'s own graph never imports them.
 */
export const DEV_PACKAGES: readonly string[] = [
  "@action-validator/cli",
  "@action-validator/core",
  "@duckdb/node-api",
  "@duckdb/node-bindings",
  "@electric-sql/pglite",
  "ajv",
  "hyparquet",
  "nodejs-polars",
  "postgres",
];

/**
 * The `node_modules` entries of {@linkcode DEV_PACKAGES} and of their variants named
 * `<package>-<suffix>` (platform builds such as `nodejs-polars-darwin-arm64`, the demo database's
 * extensions `@electric-sql/pglite-*`, `hyparquet-compressors`) that exist: their folders under
 * `node_modules/.deno/<folder>/node_modules` and their links under `node_modules`, for
 * `deno compile --exclude`.
 *
 * @param root Repository root.
 * @returns Absolute paths.
 */
export async function devExcludes(root: string = repoRoot): Promise<string[]> {
  const dev = (name: string) => DEV_PACKAGES.some((p) => name === p || name.startsWith(`${p}-`));
  const out: string[] = [];
  const store = resolve(root, "node_modules", ".deno");
  for await (const entry of readDirIfAny(store)) {
    // `<name with / as +>@<version>[_peers]`
    const at = entry.name.indexOf("@", 1);
    if (at < 0) continue;
    const name = entry.name.slice(0, at).replace("+", "/");
    // The package itself sits one level down; `--exclude` of the outer folder leaves it in.
    if (dev(name)) out.push(resolve(store, entry.name, "node_modules", name));
  }
  const links = resolve(root, "node_modules");
  for await (const entry of readDirIfAny(links)) {
    const names = entry.name.startsWith("@")
      ? (await Array.fromAsync(readDirIfAny(resolve(links, entry.name)))).map((e) =>
        `${entry.name}/${e.name}`
      )
      : [entry.name];
    for (const name of names) if (dev(name)) out.push(resolve(links, name));
  }
  return out.sort();
}

/** The entries of a folder, none when it does not exist. */
async function* readDirIfAny(path: string): AsyncGenerator<Deno.DirEntry> {
  try {
    yield* Deno.readDir(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Options of {@linkcode compile}. */
export interface CompileOptions {
  /** Targets to build; defaults to the host. */
  readonly targets?: readonly string[];
  /** Output file; only with a single target. Defaults to `<outDir>/rivet-<target>`. */
  readonly output?: string;
  /** Output folder; defaults to `dist` at the repository root. */
  readonly outDir?: string;
  /** Entry module; defaults to `cli.ts` at the repository root. */
  readonly entry?: string;
  /** Repository root (where `deno.json`, `deno.lock` and the worker entries are). */
  readonly root?: string;
}

/** One produced binary. */
export interface CompiledBinary {
  /** Target triple. */
  readonly target: string;
  /** Absolute path of the binary. */
  readonly path: string;
  /** SHA-256 of the binary, lowercase hex. */
  readonly sha256: string;
  /** Size in bytes. */
  readonly bytes: number;
  /** The `deno` arguments used. */
  readonly args: readonly string[];
}

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/**
 * The `deno compile` arguments for one target.
 *
 * @example
 * ```ts
 * const args = compileArgs("aarch64-apple-darwin", {
 *   entry: "cli.ts",
 *   output: "dist/rivet-aarch64-apple-darwin",
 *   includes: ["src/engines/chunk_worker.ts"],
 * });
 * if (!args.includes("--unstable-worker-options")) throw new Error("flag missing");
 * if (!args.some((a) => a.startsWith("--v8-flags="))) throw new Error("V8 flags missing");
 * ```
 *
 * @param target Target triple.
 * @param options Entry, output path and the files to `--include`.
 * @returns Arguments after `deno`.
 */
export function compileArgs(
  target: string,
  options: {
    readonly entry: string;
    readonly output: string;
    readonly includes: readonly string[];
    /** Paths left out of the embedded `node_modules` (see {@linkcode devExcludes}). */
    readonly excludes?: readonly string[];
  },
): string[] {
  return [
    "compile",
    "--frozen",
    "--target",
    target,
    ...UNSTABLE_FLAGS,
    V8_FLAGS_ARG,
    ...PERMISSION_FLAGS,
    ...options.includes.flatMap((file) => ["--include", file]),
    ...(options.excludes ?? []).flatMap((path) => ["--exclude", path]),
    "--output",
    options.output,
    options.entry,
  ];
}

/**
 * SHA-256 of a file through Web Crypto (the binary, ~150 MB, is read whole).
 *
 * @param path File to hash.
 * @returns Lowercase hex digest.
 */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The files every binary must embed: the worker entries and parquet-wasm's module.
 *
 * @param root Repository root.
 * @returns Absolute paths, each checked to exist.
 */
export async function requiredIncludes(root: string = repoRoot): Promise<string[]> {
  const files = WORKER_ENTRIES.map((file) => resolve(root, file));
  files.push(fileURLToPath(import.meta.resolve(PARQUET_WASM_SPECIFIER)));
  for (const file of files) {
    if (!(await exists(file))) {
      throw new Error(
        `Cannot package rivet: '${file}' does not exist; a binary without it fails at run time, ` +
          "so add the file (or run `deno install --frozen` for node_modules) before compiling",
      );
    }
  }
  return files;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Builds one binary per target, writes `<binary>.sha256` (`sha256sum` format) beside each and
 * prints that line on stdout.
 *
 * @param options Targets, output, entry.
 * @returns The binaries built.
 */
export async function compile(options: CompileOptions = {}): Promise<CompiledBinary[]> {
  const root = options.root ?? repoRoot;
  const targets = options.targets?.length ? [...new Set(options.targets)] : [Deno.build.target];
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      throw new Error(`Unknown target '${target}'; use one of ${TARGETS.join(", ")} or 'all'`);
    }
  }
  if (options.output !== undefined && targets.length > 1) {
    throw new Error(
      `--output names one file but ${targets.length} targets were asked for; use --out-dir`,
    );
  }
  const cli = resolve(root, options.entry ?? "cli.ts");
  if (!(await exists(cli))) throw new Error(`Entry module '${cli}' does not exist`);
  const commit = await currentCommit(root);
  const buildDir = resolve(root, ".build");
  await Deno.mkdir(buildDir, { recursive: true });
  const includes = await requiredIncludes(root);
  const excludes = await devExcludes(root);
  const outDir = resolve(root, options.outDir ?? "dist");

  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    console.error(
      `note: DENORT_BIN=${denort} is used as the runtime; if it is a full deno binary the ` +
        "output behaves like deno, which only checks the packaging step",
    );
  }
  const built: CompiledBinary[] = [];
  for (const target of targets) {
    const output = options.output === undefined
      ? resolve(outDir, `rivet-${target}`)
      : resolve(root, options.output);
    await Deno.mkdir(dirname(output), { recursive: true });
    const entry = resolve(buildDir, `rivet-${target}.ts`);
    const cliSpecifier = `./${relative(buildDir, cli).replaceAll("\\", "/")}`;
    await Deno.writeTextFile(entry, buildEntrySource({ commit, target }, cliSpecifier));
    const args = compileArgs(target, { entry, output, includes, excludes });
    console.error(`deno ${args.join(" ")}`);
    // deno compile prints its embedded-files tree on stdout; keep stdout for the checksums.
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    await child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
    const status = await child.status;
    await Deno.remove(entry).catch(() => {});
    if (!status.success) throw new Error(compileFailure(target, status.code, Boolean(denort)));
    const sha256 = await sha256File(output);
    const line = `${sha256}  ${basename(output)}\n`;
    await Deno.writeTextFile(`${output}.sha256`, line);
    const { size } = await Deno.stat(output);
    built.push({ target, path: output, sha256, bytes: size, args });
    console.error(`built ${output} (${(size / 1048576).toFixed(1)} MiB)`);
    await Deno.stdout.write(new TextEncoder().encode(line));
  }
  return built;
}

/**
 * The source of the generated entry of one binary: records the build for `rivet --version`
 * (`src/cli/build_info.ts`), then starts the CLI.
 *
 * @param info Commit and target.
 * @param cliSpecifier How the entry imports `cli.ts` (relative to the entry).
 * @returns TypeScript source.
 *
 * @example
 * ```ts
 * import { buildEntrySource } from "./compile.ts";
 * const src = buildEntrySource({ commit: "abc", target: "x86_64-apple-darwin" }, "../cli.ts");
 * if (!src.includes('"commit":"abc"')) throw new Error(src);
 * ```
 */
export function buildEntrySource(
  info: { readonly commit: string; readonly target: string },
  cliSpecifier: string,
): string {
  return [
    "// Generated by scripts/compile.ts for one binary; not committed.",
    `import { start } from ${JSON.stringify(cliSpecifier)};`,
    `(globalThis as Record<string, unknown>).${BUILD_INFO_GLOBAL} = ${
      JSON.stringify({ commit: info.commit, target: info.target })
    };`,
    "await start();",
    "",
  ].join("\n");
}

/**
 * The error of a failed `deno compile`; without `DENORT_BIN` it names it, because the usual cause
 * on a machine without internet access is the runtime download.
 *
 * @param target Target triple.
 * @param code Exit code of `deno compile`.
 * @param denortSet Whether `DENORT_BIN` was set.
 * @returns The message.
 *
 * @example
 * ```ts
 * import { compileFailure } from "./compile.ts";
 * if (!compileFailure("x86_64-apple-darwin", 1, false).includes("DENORT_BIN")) throw new Error();
 * ```
 */
export function compileFailure(target: string, code: number, denortSet: boolean): string {
  const base = `deno compile failed for ${target} (exit ${code})`;
  if (denortSet) return `${base}; see its messages above`;
  return `${base}. If it could not download the denort runtime for ${target} (a machine ` +
    "without access to Deno's download server), set DENORT_BIN to a denort binary for that " +
    "target (from the deno release of the same version) and run again";
}

/** The commit being built, `-dirty` with uncommitted changes; `unknown` without git. */
async function currentCommit(root: string): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) throw new Error("git failed");
    return new TextDecoder().decode(out.stdout).trim();
  };
  try {
    const commit = await git("rev-parse", "--short=12", "HEAD");
    return (await git("status", "--porcelain", "--untracked-files=no")) === ""
      ? commit
      : `${commit}-dirty`;
  } catch {
    return "unknown";
  }
}

/**
 * Parses the command line of this script.
 *
 * @param args Arguments after the script name.
 * @returns Compile options; relative paths are resolved against the current directory.
 */
export function parseArgs(args: readonly string[]): CompileOptions {
  const targets: string[] = [];
  const paths: { entry?: string; outDir?: string; output?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = flag === arg ? undefined : arg.slice(eq + 1);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") throw new Error(`${flag} needs a value`);
      return v;
    };
    const cwdRelative = (p: string) => isAbsolute(p) ? p : resolve(Deno.cwd(), p);
    if (flag === "--target") {
      const v = value();
      targets.push(...(v === "all" ? TARGETS : [v]));
    } else if (flag === "--entry") paths.entry = cwdRelative(value());
    else if (flag === "--out-dir") paths.outDir = cwdRelative(value());
    else if (flag === "--output" || flag === "-o") paths.output = cwdRelative(value());
    else {
      throw new Error(`Unknown option '${arg}'; use --target, --output, --out-dir or --entry`);
    }
  }
  return { targets, ...paths };
}

if (import.meta.main) {
  try {
    await compile(parseArgs(Deno.args));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exitCode = 1;
  }
}
