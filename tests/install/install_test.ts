/**
 * The two ways to install rivet that the README documents, run for real:
 *
 * - `scripts/install.sh` (POSIX sh, run with `dash`) against a fake GitHub release served from
 *   127.0.0.1: the right asset per OS/CPU, SHA-256 verified before anything is installed, an
 *   atomic install, and a clear error with exit 1 on every problem. The platform is faked by a
 *   `uname` placed first in PATH, and PATH holds only the tools the script says it needs, so a
 *   new dependency fails here. The fake "binary" is a shell script that leaves a marker file when
 *   it runs: the installer must never run it.
 * - the `deno install -g` command as the README and docs/bastion.md print it, into a temp
 *   `--root`, then a `parallel: 2` chunked Parquet export from a foreign working directory
 *   (chunk workers need the `worker-options` unstable flag from the config).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startPostgres } from "../_helpers/pg_server.ts";
import { exists, listDir, scratch } from "./_scratch.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const script = join(root, "scripts", "install.sh");
const decoder = new TextDecoder();

/** The four release assets (`rivet-<target>` as scripts/compile.ts names them). */
const ASSETS = [
  "rivet-x86_64-unknown-linux-gnu",
  "rivet-aarch64-unknown-linux-gnu",
  "rivet-x86_64-apple-darwin",
  "rivet-aarch64-apple-darwin",
];

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function which(tool: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const path = join(dir, tool);
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** What the script says it needs, besides a downloader. */
const BASE_TOOLS = ["mktemp", "rm", "awk", "cp", "chmod", "mv", "mkdir", "sha256sum"];

/** A fake release: per tag, file name → bytes. `latest` answers `/latest/download/…`. */
type Release = Record<string, Uint8Array>;

interface Fixture extends AsyncDisposable {
  readonly base: string;
  readonly dir: string;
  readonly requests: string[];
  /** Runs the installer under `dash` with a fake platform and a PATH of only `tools`. */
  install(options: {
    env?: Record<string, string>;
    os?: string;
    arch?: string;
    fetcher?: "curl" | "wget" | "none";
  }): Promise<{ code: number; stderr: string }>;
  /** Whether the fake binary ever ran. */
  ran(): Promise<boolean>;
}

function fakeBinary(dir: string, version: string): Uint8Array {
  return new TextEncoder().encode(
    `#!/bin/sh\ntouch '${join(dir, "ran")}'\necho "rivet ${version}"\n`,
  );
}

async function sums(files: Record<string, Uint8Array>): Promise<Uint8Array> {
  let text = "";
  for (const [name, bytes] of Object.entries(files)) text += `${await sha256Hex(bytes)}  ${name}\n`;
  return new TextEncoder().encode(text);
}

/** The four fake assets of a release. */
function assets(dir: string, version: string): Release {
  const files: Release = {};
  for (const asset of ASSETS) files[asset] = fakeBinary(dir, `${version} ${asset}`);
  return files;
}

/** A release holding the four assets and a correct SHA256SUMS. */
async function goodRelease(dir: string, version: string): Promise<Release> {
  const files = assets(dir, version);
  return { ...files, SHA256SUMS: await sums(files) };
}

async function fixture(releases: Record<string, Release>): Promise<Fixture> {
  const tmp = await scratch("rivet_install_test_");
  const dir = tmp.path;
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const m = path.match(/^\/releases\/(?:download\/([^/]+)|(latest)\/download)\/([^/]+)$/);
    const body = m ? releases[m[1] ?? m[2]!]?.[m[3]!] : undefined;
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>)
      : new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}/releases`;
  let n = 0;
  return {
    base,
    dir,
    requests,
    async install({ env = {}, os = "Linux", arch = "x86_64", fetcher = "curl" }) {
      const bin = join(dir, `bin${n++}`);
      await Deno.mkdir(bin);
      await Deno.writeTextFile(
        join(bin, "uname"),
        `#!/bin/sh\ncase "$1" in -s) echo '${os}' ;; -m) echo '${arch}' ;; *) exit 1 ;; esac\n`,
        { mode: 0o755 },
      );
      const tools = fetcher === "none" ? BASE_TOOLS : [...BASE_TOOLS, fetcher];
      for (const tool of tools) {
        const path = which(tool);
        assert.ok(path, `${tool} is installed on this machine`);
        await Deno.symlink(path, join(bin, tool));
      }
      const out = await new Deno.Command(which("dash")!, {
        args: [script],
        clearEnv: true,
        env: {
          PATH: bin,
          HOME: join(dir, "home"),
          RIVET_DOWNLOAD_BASE: base,
          TMPDIR: dir,
          ...env,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: decoder.decode(out.stderr) + decoder.decode(out.stdout) };
    },
    async ran() {
      return await exists(join(dir, "ran"));
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** Runs a file and returns its stdout (for the installed fake binary, after the checks). */
async function runFile(path: string): Promise<string> {
  const out = await new Deno.Command(path, { args: ["--version"], stdout: "piped" }).output();
  assert.equal(out.code, 0);
  return decoder.decode(out.stdout).trim();
}

Deno.test("install.sh is POSIX sh: dash -n, sh -n and shellcheck (when installed) are clean", async () => {
  for (const shell of ["dash", "sh"]) {
    const out = await new Deno.Command(shell, { args: ["-n", script], stderr: "piped" }).output();
    assert.equal(out.code, 0, `${shell} -n: ${decoder.decode(out.stderr)}`);
  }
  if (which("shellcheck")) {
    const out = await new Deno.Command("shellcheck", {
      args: ["-s", "sh", script],
      stdout: "piped",
    })
      .output();
    assert.equal(out.code, 0, decoder.decode(out.stdout));
  }
  const text = await Deno.readTextFile(script);
  assert.match(text, /^#!\/bin\/sh\n/);
  const code = text.split("\n").filter((line) => !/^\s*#/.test(line)).join("\n");
  assert.doesNotMatch(code, /\[\[|\bfunction\s|\blocal\s|\$\{\w+\/\/|\$'/, "no bash-only syntax");
});

Deno.test("install.sh installs the latest release into ~/.local/bin with curl, never running it", async () => {
  await using tmp = await scratch("rivet_install_rel_");
  await using g = await fixture({ latest: await goodRelease(tmp.path, "9.9.9") });
  const { code, stderr } = await g.install({});
  assert.equal(code, 0, stderr);
  const target = join(g.dir, "home", ".local", "bin");
  assert.deepEqual(await listDir(target), ["rivet"], "no temp file left beside it");
  assert.equal((await Deno.stat(join(target, "rivet"))).mode! & 0o777, 0o755);
  assert.deepEqual(g.requests, [
    "/releases/latest/download/SHA256SUMS",
    "/releases/latest/download/rivet-x86_64-unknown-linux-gnu",
  ]);
  assert.match(stderr, /installed .*\/\.local\/bin\/rivet/);
  assert.match(stderr, /is not on your PATH/);
  assert.equal(await g.ran(), false, "the installer ran the downloaded file");
  assert.equal(await runFile(join(target, "rivet")), "rivet 9.9.9 rivet-x86_64-unknown-linux-gnu");
});

Deno.test("install.sh picks the asset per OS and CPU, takes RIVET_VERSION and RIVET_INSTALL_DIR, works with wget", async () => {
  await using tmp = await scratch("rivet_install_rel_");
  const dir = tmp.path;
  await using f = await fixture({ "v1.2.3": await goodRelease(dir, "1.2.3") });
  const cases: [string, string, string, "curl" | "wget"][] = [
    ["Linux", "x86_64", "rivet-x86_64-unknown-linux-gnu", "wget"],
    ["Linux", "aarch64", "rivet-aarch64-unknown-linux-gnu", "curl"],
    ["Linux", "arm64", "rivet-aarch64-unknown-linux-gnu", "wget"],
    ["Darwin", "x86_64", "rivet-x86_64-apple-darwin", "curl"],
    ["Darwin", "arm64", "rivet-aarch64-apple-darwin", "curl"],
  ];
  for (const [os, arch, asset, fetcher] of cases) {
    if (!which(fetcher)) continue;
    const installDir = join(f.dir, "opt", `${os}-${arch}`, "bin");
    f.requests.length = 0;
    // "1.2.3" without the v: the tag is v1.2.3.
    const { code, stderr } = await f.install({
      os,
      arch,
      fetcher,
      env: { RIVET_VERSION: "1.2.3", RIVET_INSTALL_DIR: installDir },
    });
    assert.equal(code, 0, `${os} ${arch} ${fetcher}: ${stderr}`);
    assert.deepEqual(f.requests, [
      "/releases/download/v1.2.3/SHA256SUMS",
      `/releases/download/v1.2.3/${asset}`,
    ]);
    assert.equal(await runFile(join(installDir, "rivet")), `rivet 1.2.3 ${asset}`);
    assert.deepEqual(await listDir(join(f.dir, "home")), [], "nothing in ~/.local/bin");
  }
  assert.ok(which("curl") || which("wget"), "curl or wget is installed");
});

Deno.test("install.sh refuses a checksum mismatch and keeps the installed binary", async () => {
  await using tmp = await scratch("rivet_install_rel_");
  const dir = tmp.path;
  const good = await goodRelease(dir, "1.0.0");
  const tampered = fakeBinary(dir, "evil");
  await using f = await fixture({
    latest: { ...good, "rivet-x86_64-unknown-linux-gnu": tampered },
  });
  const installDir = join(f.dir, "bin-target");
  await Deno.mkdir(installDir);
  await Deno.writeTextFile(join(installDir, "rivet"), "previous", { mode: 0o755 });
  const { code, stderr } = await f.install({ env: { RIVET_INSTALL_DIR: installDir } });
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    /error: checksum mismatch for rivet-x86_64-unknown-linux-gnu: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
  );
  assert.match(stderr, /nothing was installed/);
  assert.deepEqual(await listDir(installDir), ["rivet"]);
  assert.equal(await Deno.readTextFile(join(installDir, "rivet")), "previous");
  assert.equal(await f.ran(), false);
  assert.deepEqual((await listDir(f.dir)).filter((n) => !/^(bin\d+|bin-target)$/.test(n)), []);
});

Deno.test("install.sh fails clearly when SHA256SUMS lacks the asset, a download fails, or no downloader exists", async () => {
  await using tmp = await scratch("rivet_install_rel_");
  const dir = tmp.path;
  const files = assets(dir, "1.0.0");
  // v2: SHA256SUMS without the macOS arm64 line (the file itself is there).
  const { "rivet-aarch64-apple-darwin": _unlisted, ...listed } = files;
  const partial: Release = { ...files, SHA256SUMS: await sums(listed) };
  // v3: the Linux x86_64 file is listed but missing from the release.
  const { "rivet-x86_64-unknown-linux-gnu": _gone, ...noLinuxFile } = await goodRelease(
    dir,
    "1.0.0",
  );
  await using f = await fixture({ v2: partial, v3: noLinuxFile });
  const installDir = join(f.dir, "target");

  let r = await f.install({
    os: "Darwin",
    arch: "arm64",
    env: { RIVET_VERSION: "v2", RIVET_INSTALL_DIR: installDir },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /error: SHA256SUMS of v2 lists no checksum for rivet-aarch64-apple-darwin/,
  );

  r = await f.install({ env: { RIVET_VERSION: "v3", RIVET_INSTALL_DIR: installDir } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /error: cannot download .*\/download\/v3\/rivet-x86_64-unknown-linux-gnu; nothing was installed/,
  );

  r = await f.install({ env: { RIVET_VERSION: "v9", RIVET_INSTALL_DIR: installDir } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: cannot download .*\/download\/v9\/SHA256SUMS \(no such release/);

  r = await f.install({ fetcher: "none", env: { RIVET_INSTALL_DIR: installDir } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /error: neither curl nor wget is installed/);

  assert.deepEqual(await listDir(installDir), [], "nothing installed");
  assert.equal(await f.ran(), false);
});

Deno.test("install.sh refuses an unsupported platform, a bad tag and plain http before downloading", async () => {
  await using f = await fixture({});
  const cases: [Record<string, string>, string, string, RegExp][] = [
    [{}, "Linux", "riscv64", /error: unsupported CPU 'riscv64' on Linux: .*x86_64 and aarch64/],
    [{}, "FreeBSD", "x86_64", /error: unsupported operating system 'FreeBSD'/],
    [
      { RIVET_VERSION: "v1;rm -rf /" },
      "Linux",
      "x86_64",
      /error: RIVET_VERSION 'v1;rm -rf \/' is not a release tag/,
    ],
    [
      { RIVET_DOWNLOAD_BASE: "http://mirror.example/releases" },
      "Linux",
      "x86_64",
      /error: RIVET_DOWNLOAD_BASE must be an https:\/\/ URL/,
    ],
  ];
  cases.push([
    { RIVET_DOWNLOAD_BASE: "", RIVET_REPO: "rivet" },
    "Linux",
    "x86_64",
    /RIVET_REPO must be owner\/name/,
  ]);
  if (/^DEFAULT_REPO="OWNER\/REPO"$/m.test(await Deno.readTextFile(script))) {
    // Until the repository is named in the script, the default must not guess one.
    cases.push([{ RIVET_DOWNLOAD_BASE: "" }, "Linux", "x86_64", /names no GitHub repository/]);
  }
  for (const [env, os, arch, message] of cases) {
    const r = await f.install({ os, arch, env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
  }
  assert.deepEqual(f.requests, [], "nothing was downloaded");
  assert.deepEqual(await listDir(join(f.dir, "home")), []);
});

/** The `deno install -g` command line the README prints. */
async function documentedDenoInstall(): Promise<string> {
  const readme = await Deno.readTextFile(join(root, "README.md"));
  const lines = readme.split("\n").map((l) => l.trim()).filter((l) =>
    l.startsWith("deno install -g")
  );
  assert.equal(lines.length, 1, "README.md prints exactly one `deno install -g` command");
  const bastion = await Deno.readTextFile(join(root, "docs", "bastion.md"));
  assert.ok(bastion.includes(lines[0]!), "docs/bastion.md prints the same command");
  return lines[0]!.replace(/\s+#.*$/, "");
}

Deno.test("the documented deno install -g command installs a rivet that runs a parallel Parquet export from any folder", async () => {
  const command = await documentedDenoInstall();
  const words = command.split(/\s+/);
  assert.deepEqual(words.slice(0, 3), ["deno", "install", "-g"]);
  await using tmp = await scratch("rivet_deno_install_");
  const dir = tmp.path;
  // Run from the clone, as documented; --root keeps the install inside the temp folder.
  const install = await new Deno.Command(Deno.execPath(), {
    // Flags go before the script (after it they would be rivet's arguments).
    args: [...words.slice(1, 3), "--root", join(dir, "root"), ...words.slice(3)],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(install.code, 0, decoder.decode(install.stderr));
  const rivet = join(dir, "root", "bin", "rivet");
  const env = { PATH: `${join(Deno.execPath(), "..")}:${Deno.env.get("PATH") ?? ""}` };

  const version = await new Deno.Command(rivet, {
    args: ["--version"],
    cwd: dir,
    env,
    stdout: "piped",
  })
    .output();
  assert.equal(version.code, 0);
  const pkg = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  assert.match(
    decoder.decode(version.stdout),
    new RegExp(`^rivet ${pkg.version.replaceAll(".", "\\.")}\\b`),
  );

  await using pg = await startPostgres();
  await pg.psql(
    "CREATE TABLE t AS SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 500) g",
  );
  const work = join(dir, "work");
  await Deno.mkdir(work);
  await Deno.writeTextFile(
    join(work, "plan.yaml"),
    [
      "source: { type: postgres, url_env: INSTALL_TEST_URL }",
      "exports:",
      "  - name: t",
      "    table: t",
      "    mode: chunked",
      "    chunk_column: id",
      "    chunk_size: 100",
      "    parallel: 2",
      "    format: parquet",
      "    destination: { type: local, path: out/t }",
      "",
    ].join("\n"),
  );
  const run = await new Deno.Command(rivet, {
    args: ["run", "-c", "plan.yaml", "--json"],
    cwd: work,
    env: { ...env, INSTALL_TEST_URL: pg.url },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 0, decoder.decode(run.stderr));
  const manifest = JSON.parse(await Deno.readTextFile(join(work, "out", "t", "manifest.json")));
  assert.equal(manifest.row_count, 500);
  const parts = (await listDir(join(work, "out", "t"))).filter((n) => n.endsWith(".parquet"));
  assert.equal(parts.length, 5, `one part per chunk: ${parts.join(", ")}`);
});
