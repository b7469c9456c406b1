/**
 * Packages rivet as standalone binaries with `deno compile`, one per target, each with a
 * `.sha256` beside it.
 *
 * ```sh
 * deno run -A scripts/compile.ts                       # host target
 * deno run -A scripts/compile.ts --target all          # the four release targets
 * deno run -A scripts/compile.ts --target aarch64-apple-darwin --out-dir dist
 * ```
 *
 * Options: `--target <triple|all>` (repeatable; default the host), `--entry <file>` (default
 * `cli.ts`), `--out-dir <dir>` (default `dist`).
 *
 * `deno compile` downloads the `denort` runtime for the target from Deno's release server. Where
 * that server is unreachable, set `DENORT_BIN` to a local denort (it is passed through the
 * environment unchanged). The full `deno` binary can stand in to check the packaging step, but
 * the result then behaves like `deno`, not like rivet (ENVIRONMENT.md §10).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Release targets (`deno compile --target` triples). */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

/** A release target. */
export type Target = (typeof TARGETS)[number];

/**
 * Worker entry modules. `new Worker(new URL(...))` is not followed by the module graph, so each
 * must be passed with `--include` or the binary lacks it (ENVIRONMENT.md §10). Listed here before
 * they exist; only existing files are included.
 */
export const workerEntries: readonly string[] = ["src/engines/_worker_main.ts"];

/**
 * Permissions baked into the binary. A compiled binary takes no `--allow-*` flags at run time, so
 * they are fixed here: net (database and object stores), read/write (config, state, outputs),
 * env (`RIVET_*`, `${VAR}` placeholders, `*_env` credentials; tedious and the Azure SDK need
 * unrestricted env), sys (os release for the cloud SDKs, memory figures), run (the subprocess
 * engine re-runs the binary itself). Hosts and paths are only known per config, so they cannot
 * be narrowed at compile time; workers narrow them at run time instead.
 */
export const permissionFlags: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
];

/** Options of {@linkcode compile}. */
export interface CompileOptions {
  /** Targets to build; defaults to the host. */
  readonly targets?: readonly string[];
  /** Entry module; defaults to `cli.ts` at the repository root. */
  readonly entry?: string;
  /** Output folder; defaults to `dist` at the repository root. */
  readonly outDir?: string;
  /** Repository root (where `deno.json` and `deno.lock` are). */
  readonly root?: string;
}

/** One produced binary. */
export interface CompiledBinary {
  readonly target: string;
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/**
 * The `deno compile` arguments for one target.
 *
 * @param target Target triple.
 * @param options Entry, output path and the worker files that exist.
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
    "--frozen",
    "--target",
    target,
    "--unstable-worker-options",
    ...permissionFlags,
    ...options.includes.flatMap((file) => ["--include", file]),
    "--output",
    options.output,
    options.entry,
  ];
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

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Builds one binary per target and writes `<binary>.sha256` (`sha256sum` format) beside each.
 *
 * @param options Targets, entry, output folder.
 * @returns The binaries built.
 */
export async function compile(options: CompileOptions = {}): Promise<CompiledBinary[]> {
  const root = options.root ?? repoRoot;
  const targets = options.targets?.length ? options.targets : [Deno.build.target];
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      throw new Error(`Unknown target '${target}'; use one of ${TARGETS.join(", ")} or 'all'`);
    }
  }
  const entry = resolve(root, options.entry ?? "cli.ts");
  if (!(await exists(entry))) throw new Error(`Entry module '${entry}' does not exist`);
  const outDir = resolve(root, options.outDir ?? "dist");
  await Deno.mkdir(outDir, { recursive: true });
  const includes: string[] = [];
  for (const file of workerEntries) if (await exists(join(root, file))) includes.push(file);

  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    console.error(
      `note: DENORT_BIN=${denort} is used as the runtime; if it is a full deno binary the ` +
        "output behaves like deno, which only checks the packaging step",
    );
  }
  const built: CompiledBinary[] = [];
  for (const target of targets) {
    const output = join(outDir, `rivet-${target}`);
    const args = compileArgs(target, { entry, output, includes });
    console.error(`deno ${args.join(" ")}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) throw new Error(`deno compile failed for ${target} (exit ${status.code})`);
    const sha256 = await sha256File(output);
    await Deno.writeTextFile(`${output}.sha256`, `${sha256}  ${basename(output)}\n`);
    const { size } = await Deno.stat(output);
    built.push({ target, path: output, sha256, bytes: size });
    console.error(`built ${output} (${(size / 1048576).toFixed(1)} MiB, sha256 ${sha256})`);
  }
  return built;
}

function parseArgs(args: readonly string[]): CompileOptions {
  const targets: string[] = [];
  let entry: string | undefined;
  let outDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--target") {
      const v = value();
      targets.push(...(v === "all" ? TARGETS : [v]));
    } else if (flag === "--entry") entry = value();
    else if (flag === "--out-dir") outDir = value();
    else throw new Error(`Unknown option '${arg}'; use --target, --entry or --out-dir`);
  }
  const cwdRelative = (p: string | undefined) =>
    p === undefined || isAbsolute(p) ? p : resolve(Deno.cwd(), p);
  return {
    targets,
    ...(entry === undefined ? {} : { entry: cwdRelative(entry)! }),
    ...(outDir === undefined ? {} : { outDir: cwdRelative(outDir)! }),
  };
}

if (import.meta.main) {
  try {
    await compile(parseArgs(Deno.args));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exitCode = 1;
  }
}
