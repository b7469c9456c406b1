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
 * (default `cli.ts`), `--max-payload-mib <n>` (fail before compiling when the bundle the binary
 * embeds is larger; the release uses 40). stdout gets one `sha256sum` line per binary; everything else goes to stderr.
 *
 * Each binary is built in two steps, in `.build/<target>/` (removed afterwards):
 * 1. `deno bundle` turns rivet into plain JavaScript modules in one folder ({@linkcode bundle}):
 *    a generated entry that records the commit and target for `rivet --version` and starts
 *    `cli.ts`, one entry per worker, the chunks they share (commands load lazily), every npm
 *    package inlined, and parquet-wasm's `.wasm` copied beside them;
 * 2. `deno compile --no-config` of that entry, including the worker entries and the wasm. No
 *    `node_modules` is embedded: only the code rivet reaches, ~11 MB of JavaScript and the 5 MB
 *    wasm, where the whole package tree (source maps, type declarations, browser builds, test
 *    and demo packages) made a binary ~95 MB larger.
 * `src/_util/bundle.ts` is how the code finds its worker entries and the wasm either way.
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
import { BUNDLED_PARQUET_WASM } from "../src/_util/bundle.ts";
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
 * - `export_worker.ts`: in a compiled binary every export runs inside a worker whose permissions
 *   are narrowed to that export (the sandbox), because the process itself cannot be started with
 *   narrower `--allow-*` flags (a compiled binary's permissions are fixed at compile time).
 * - `md5_worker.ts`: the MD5 of a large part, hashed beside the thread that encodes it.
 *
 * Each becomes `<stem>.js` at the bundle's top level, where `siblingEntry` looks for it. A
 * missing entry is an error, never a silent skip: the binary would build and then fail at run
 * time.
 */
export const WORKER_ENTRIES: readonly string[] = [
  "src/engines/chunk_worker.ts",
  "src/engines/export_worker.ts",
  "src/_util/md5_worker.ts",
];

/**
 * parquet-wasm's module, which `src/formats/_wasm.ts` reads with `Deno.readFile` (so it is data,
 * not part of the module graph): copied into the bundle as `BUNDLED_PARQUET_WASM` and included
 * in the binary.
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
  /** Refuse to compile when the bundle (what the binary embeds) is larger, MiB. */
  readonly maxPayloadMiB?: number;
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
  /** Bytes of the bundle the binary embeds (its size over the runtime's). */
  readonly payloadBytes: number;
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
  },
): string[] {
  return [
    "compile",
    // The bundle imports no package: no import map, no lock file, no node_modules to embed.
    "--no-config",
    // Plain JavaScript, type-checked as TypeScript before it was bundled (`deno task ok`); its
    // JSDoc type imports name files esbuild did not emit.
    "--no-check",
    "--target",
    target,
    ...UNSTABLE_FLAGS,
    V8_FLAGS_ARG,
    ...PERMISSION_FLAGS,
    ...options.includes.flatMap((file) => ["--include", file]),
    "--output",
    options.output,
    options.entry,
  ];
}

/**
 * The `deno bundle` arguments: every entry into one flat folder (the entries sit side by side, so
 * their outputs do too), shared code split into chunks, npm packages inlined, names kept so
 * stack traces and error classes stay readable.
 *
 * @param entries The generated entry modules (one folder).
 * @param outDir The bundle folder.
 * @returns Arguments after `deno`.
 *
 * @example
 * ```ts
 * import { bundleArgs } from "./compile.ts";
 * const args = bundleArgs([".build/t/rivet.ts"], ".build/t/bundle");
 * if (!args.includes("--code-splitting") || args.at(-1) !== ".build/t/rivet.ts") throw new Error();
 * ```
 */
export function bundleArgs(entries: readonly string[], outDir: string): string[] {
  return [
    "bundle",
    "--frozen",
    "--platform",
    "deno",
    "--code-splitting",
    "--keep-names",
    "--outdir",
    outDir,
    ...entries,
  ];
}

/** What {@linkcode bundle} produced. */
export interface Bundle {
  /** The bundle folder. */
  readonly dir: string;
  /** Its main entry (`rivet.js`), which `deno compile` (or `deno run`) starts. */
  readonly entry: string;
  /** The worker entries and the wasm, for `deno compile --include`. */
  readonly includes: readonly string[];
}

/**
 * Bundles rivet for one target into `<buildDir>/bundle`: the generated entries, `deno bundle`,
 * then parquet-wasm's module beside them. Checks that every entry came out and that no module
 * still imports an npm package (the binary embeds none).
 *
 * @param target Target triple (recorded for `rivet --version`).
 * @param options Repository root, the folder to build in (emptied first), the commit, the CLI
 *   entry.
 * @returns The bundle's folder, entry and includes.
 */
export async function bundle(
  target: string,
  options: {
    readonly root?: string;
    readonly buildDir: string;
    readonly commit: string;
    /** The CLI entry module (absolute); default `cli.ts` at the root. */
    readonly cli?: string;
  },
): Promise<Bundle> {
  const root = options.root ?? repoRoot;
  const { buildDir } = options;
  await Deno.remove(buildDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(buildDir, { recursive: true });
  const spec = (file: string) =>
    `./${relative(buildDir, resolve(root, file)).replaceAll("\\", "/")}`;
  const entries = [resolve(buildDir, "rivet.ts")];
  await Deno.writeTextFile(
    entries[0]!,
    buildEntrySource({ commit: options.commit, target }, spec(options.cli ?? "cli.ts")),
  );
  for (const file of await requiredWorkerEntries(root)) {
    const entry = resolve(buildDir, `${basename(file, ".ts")}.ts`);
    await Deno.writeTextFile(
      entry,
      `// Generated by scripts/compile.ts: the worker entry at the bundle's top level.\n` +
        `import ${JSON.stringify(spec(file))};\n`,
    );
    entries.push(entry);
  }
  const dir = resolve(buildDir, "bundle");
  const args = bundleArgs(entries, dir);
  console.error(`deno ${args.join(" ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `deno bundle failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  const outputs = entries.map((e) => resolve(dir, `${basename(e, ".ts")}.js`));
  for (const file of outputs) {
    if (!(await exists(file))) throw new Error(`deno bundle did not write '${file}'`);
  }
  const wasm = resolve(dir, BUNDLED_PARQUET_WASM);
  await Deno.copyFile(fileURLToPath(import.meta.resolve(PARQUET_WASM_SPECIFIER)), wasm);
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".js")) continue;
    const text = await Deno.readTextFile(resolve(dir, e.name));
    const npm = /(?:from\s*|import\s*\(\s*)["']npm:[^"']*["']/.exec(text);
    if (npm) throw new Error(`the bundle still imports a package (${npm[0]} in ${e.name})`);
  }
  return { dir, entry: outputs[0]!, includes: [...outputs.slice(1), wasm] };
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
 * The worker entries every binary must embed, and parquet-wasm's module must exist too.
 *
 * @param root Repository root.
 * @returns Absolute paths of the worker entries, each checked to exist.
 */
export async function requiredWorkerEntries(root: string = repoRoot): Promise<string[]> {
  const files = WORKER_ENTRIES.map((file) => resolve(root, file));
  for (const file of [...files, fileURLToPath(import.meta.resolve(PARQUET_WASM_SPECIFIER))]) {
    if (!(await exists(file))) {
      throw new Error(
        `Cannot package rivet: '${file}' does not exist; a binary without it fails at run time, ` +
          "so add the file (or run `deno install --frozen` for node_modules) before compiling",
      );
    }
  }
  return files;
}

/** Total bytes of the files in a folder (not recursive: the bundle is flat). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) total += (await Deno.stat(resolve(dir, e.name))).size;
  }
  return total;
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
  // Before anything is written: a binary without a worker entry or the wasm fails at run time.
  await requiredWorkerEntries(root);
  const commit = await currentCommit(root);
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
    const buildDir = resolve(root, ".build", target);
    const bundled = await bundle(target, { root, buildDir, commit, cli });
    const payloadBytes = await folderBytes(bundled.dir);
    const payloadMiB = payloadBytes / 1048576;
    if (options.maxPayloadMiB !== undefined && payloadMiB > options.maxPayloadMiB) {
      await Deno.remove(buildDir, { recursive: true }).catch(() => {});
      throw new Error(
        `the bundle for ${target} is ${payloadMiB.toFixed(1)} MiB, over the ` +
          `--max-payload-mib ${options.maxPayloadMiB} budget: something large entered the graph`,
      );
    }
    const args = compileArgs(target, {
      entry: bundled.entry,
      output,
      includes: bundled.includes,
    });
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
    await Deno.remove(buildDir, { recursive: true }).catch(() => {});
    if (!status.success) throw new Error(compileFailure(target, status.code, Boolean(denort)));
    const sha256 = await sha256File(output);
    const line = `${sha256}  ${basename(output)}\n`;
    await Deno.writeTextFile(`${output}.sha256`, line);
    const { size } = await Deno.stat(output);
    built.push({ target, path: output, sha256, bytes: size, args, payloadBytes });
    console.error(
      `built ${output} (${(size / 1048576).toFixed(1)} MiB: the runtime and ` +
        `${payloadMiB.toFixed(1)} MiB of rivet)`,
    );
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
  const paths: { entry?: string; outDir?: string; output?: string; maxPayloadMiB?: number } = {};
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
    else if (flag === "--max-payload-mib") {
      const v = Number(value());
      if (!(v > 0)) throw new Error(`--max-payload-mib needs a positive number of MiB`);
      paths.maxPayloadMiB = v;
    } else {
      throw new Error(
        `Unknown option '${arg}'; use --target, --output, --out-dir, --entry or --max-payload-mib`,
      );
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
