/**
 * What ships beside the binary, checked where it can be here (no Docker daemon, no GitHub):
 *
 * - the scheduled-run wrapper that docs/bastion.md prints, run as written against a stand-in
 *   `rivet` that replays real `run_finished` events: transient failures are retried with `-e`,
 *   a checkpointed export refused with `state.chunk_run_in_progress` is continued with
 *   `--resume`, and the exit code is the worst of the last attempt;
 * - the Dockerfile (non-root, the binary as entrypoint, the asset name scripts/compile.ts
 *   writes) and its `.dockerignore`; the release workflow's installer and docker jobs, which the
 *   release waits for;
 * - LICENSE is the full Apache License 2.0 text.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { TARGETS } from "../../scripts/compile.ts";
import { scratch } from "./_scratch.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => Deno.readTextFile(join(root, path));
const decoder = new TextDecoder();

/** The `sh` block of docs/bastion.md that holds the wrapper. */
async function wrapperFromDocs(): Promise<string> {
  const doc = await read("docs/bastion.md");
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const wrapper = blocks.filter((b) => b.includes("/usr/local/bin/rivet-scheduled:"));
  assert.equal(wrapper.length, 1, "docs/bastion.md prints the wrapper once");
  return wrapper[0]!;
}

/** An outcome of `run_finished`, failed with the given error when there is one. */
function outcome(name: string, error?: { code: string; exit_code: number }) {
  return {
    export_name: name,
    status: error ? "failed" : "success",
    ...(error ? { error: { name: "Error", message: "m", ...error } } : {}),
  };
}

const TRANSIENT = { code: "source.connection_lost", exit_code: 2 };
const IN_PROGRESS = { code: "state.chunk_run_in_progress", exit_code: 1 };
const INTEGRITY = { code: "destination.checksum_mismatch", exit_code: 3 };

/**
 * Runs the documented wrapper with a stand-in `rivet` first in PATH. `answers[i]` is what the
 * i-th `rivet` call prints as its `run_finished` line and exits with.
 */
async function runWrapper(
  answers: { exit: number; outcomes: ReturnType<typeof outcome>[] }[],
): Promise<{ code: number; calls: string[] }> {
  await using tmp = await scratch("rivet_wrapper_test_");
  const dir = tmp.path;
  const wrapper = (await wrapperFromDocs())
    .replace(/^cfg=.*$/m, `cfg=${dir}/plan.yaml`)
    .replace(/^events=.*$/m, `events=${dir}/last-run.ndjson`)
    .replace(/^tries=3 pause=900\b/m, "tries=3 pause=0");
  assert.match(wrapper, /pause=0/, "the wrapper's settings are where the test expects them");
  await Deno.writeTextFile(join(dir, "wrapper.sh"), wrapper);
  const cases = answers.map((a, i) =>
    `  ${i + 1}) printf '%s\\n' '{"type":"batch_read"}' '${
      JSON.stringify({ type: "run_finished", exit_code: a.exit, outcomes: a.outcomes })
    }'; exit ${a.exit} ;;`
  ).join("\n");
  await Deno.writeTextFile(
    join(dir, "rivet"),
    `#!/bin/sh\nn=$(($(cat '${dir}/n' 2>/dev/null || echo 0) + 1))\necho "$n" > '${dir}/n'\n` +
      `echo "$*" >> '${dir}/calls'\ncase $n in\n${cases}\n  *) exit 99 ;;\nesac\n`,
    { mode: 0o755 },
  );
  const out = await new Deno.Command("dash", {
    args: [join(dir, "wrapper.sh")],
    env: { PATH: `${dir}:${Deno.env.get("PATH") ?? ""}` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const calls = (await Deno.readTextFile(join(dir, "calls")).catch(() => "")).trim().split("\n");
  assert.ok(!decoder.decode(out.stderr).includes("not found"), decoder.decode(out.stderr));
  return { code: out.code, calls: calls.map((c) => c.replace(`${dir}/`, "")) };
}

Deno.test("the bastion wrapper retries transient exports with -e and continues checkpointed ones with --resume", async () => {
  const r = await runWrapper([
    { exit: 2, outcomes: [outcome("a", TRANSIENT), outcome("b"), outcome("c", TRANSIENT)] },
    { exit: 1, outcomes: [outcome("a", IN_PROGRESS), outcome("c")] },
    { exit: 0, outcomes: [outcome("a")] },
  ]);
  assert.deepEqual(r.calls, [
    "run -c plan.yaml --events ndjson",
    "run -c plan.yaml --events ndjson -e a -e c",
    "run -c plan.yaml --events ndjson -e a --resume",
  ]);
  assert.equal(r.code, 0);
});

Deno.test("the bastion wrapper stops on a permanent or integrity failure and gives up after 3 attempts", async () => {
  let r = await runWrapper([{ exit: 3, outcomes: [outcome("a", INTEGRITY)] }]);
  assert.deepEqual(r, { code: 3, calls: ["run -c plan.yaml --events ndjson"] });

  r = await runWrapper([
    { exit: 2, outcomes: [outcome("a", TRANSIENT)] },
    { exit: 2, outcomes: [outcome("a", TRANSIENT)] },
    { exit: 2, outcomes: [outcome("a", TRANSIENT)] },
  ]);
  assert.equal(r.code, 2);
  assert.equal(r.calls.length, 3);

  // The resumed export fails on integrity while another export is still transient: worst wins.
  r = await runWrapper([
    { exit: 2, outcomes: [outcome("a", TRANSIENT), outcome("b", TRANSIENT)] },
    { exit: 2, outcomes: [outcome("a", IN_PROGRESS), outcome("b", TRANSIENT)] },
    { exit: 3, outcomes: [outcome("a", INTEGRITY)] },
  ]);
  assert.equal(r.code, 3);
  assert.equal(r.calls.length, 3);
});

Deno.test("the Dockerfile runs the compiled linux binary as a non-root entrypoint", async () => {
  const text = await read("Dockerfile");
  const from = text.match(/^FROM (\S+)/m)?.[1] ?? "";
  assert.match(from, /^(debian:\d+-slim|gcr\.io\/distroless\/)/, "a slim or distroless base");
  const user = text.match(/^USER (\S+)/m)?.[1] ?? "";
  assert.ok(user !== "" && !/^(root|0)(:|$)/.test(user), `runs as a non-root user: '${user}'`);
  assert.match(text, /^ENTRYPOINT \["\/usr\/local\/bin\/rivet"\]$/m);
  const binary = text.match(/^ARG RIVET_BINARY=(\S+)$/m)?.[1];
  assert.ok(TARGETS.some((t) => binary === `rivet-${t}` && t.endsWith("-linux-gnu")));
  assert.match(text, /^COPY --chmod=0755 dist\/\$\{RIVET_BINARY\} \/usr\/local\/bin\/rivet$/m);
  // The context holds the Linux binaries only: no sources, node_modules or state reach the daemon.
  const ignore = (await read(".dockerignore")).split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(ignore, ["*", "!dist/rivet-*-linux-gnu"]);
});

Deno.test("the release waits for the installer on four platforms and the smoke-tested Docker image", async () => {
  // deno-lint-ignore no-explicit-any
  const wf: any = parse(await read(".github/workflows/release.yml"));
  const buildRunners = wf.jobs.build.strategy.matrix.include.map((m: { runner: string }) =>
    m.runner
  );
  assert.deepEqual(wf.jobs.installer.strategy.matrix.runner, buildRunners);
  const installRun = wf.jobs.installer.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
  assert.match(
    installRun,
    /RIVET_DOWNLOAD_BASE=http:\/\/127\.0\.0\.1:\d+ .*\\\n.*sh scripts\/install\.sh/,
  );
  assert.match(installRun, /accepted a file whose checksum does not match/);

  const docker = wf.jobs.docker;
  assert.deepEqual(docker.needs, "build");
  const dockerRun = docker.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
  assert.match(dockerRun, /sha256sum -c rivet-x86_64-unknown-linux-gnu\.sha256/);
  assert.match(dockerRun, /docker build .* -t rivet:ci \./);
  assert.match(dockerRun, /docker run --rm rivet:ci --version/);
  assert.match(dockerRun, /rivet:ci run -c plan\.yaml/);
  assert.ok(docker.services?.postgres, "a PostgreSQL service for the export");
  assert.deepEqual(wf.jobs.release.needs, ["build", "compiled-smoke", "installer", "docker"]);
});

Deno.test("the release publishes install.sh stamped with its repository, which then needs no RIVET_REPO", async () => {
  // deno-lint-ignore no-explicit-any
  const wf: any = parse(await read(".github/workflows/release.yml"));
  const steps = wf.jobs.release.steps as { run?: string; with?: { files?: string } }[];
  const stamp = steps.find((s) => s.run?.includes("dist/install.sh"))?.run ?? "";
  const sed = /sed "(s\|.*\|g?)"/.exec(stamp.replaceAll("\\\n", ""))?.[1];
  assert.ok(sed, stamp);
  assert.match(steps.at(-1)?.with?.files ?? "", /dist\/install\.sh/);
  // The same sed expression over the real script, as the runner would expand it.
  const expr = sed.replaceAll("${GITHUB_REPOSITORY}", "acme/rivet").replaceAll('\\"', '"')
    .replaceAll("\\$", "$");
  const dir = await Deno.makeTempDir({ prefix: "rivet_stamp_" });
  try {
    const stamped = join(dir, "install.sh");
    const out = await new Deno.Command("sed", {
      args: [expr, join(root, "scripts", "install.sh")],
      stdout: "piped",
    }).output();
    await Deno.writeFile(stamped, out.stdout);
    assert.match(new TextDecoder().decode(out.stdout), /^DEFAULT_REPO="acme\/rivet"$/m);
    // Unstamped, the script asks for RIVET_REPO; stamped, it goes on to check the tag.
    const run = (script: string) =>
      new Deno.Command("sh", {
        args: [script],
        env: { RIVET_VERSION: "v1;bad", HOME: dir },
        clearEnv: true,
        stderr: "piped",
      }).output().then((r) => new TextDecoder().decode(r.stderr));
    assert.match(await run(join(root, "scripts", "install.sh")), /names no GitHub repository/);
    assert.match(await run(stamped), /RIVET_VERSION 'v1;bad' is not a release tag/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LICENSE is the full Apache License 2.0 with the rivet authors' copyright", async () => {
  const text = await read("LICENSE");
  assert.match(text, /^\s*Apache License\n\s*Version 2\.0, January 2004\n/);
  for (let section = 1; section <= 9; section++) {
    assert.match(text, new RegExp(`^ {3}${section}\\. [A-Z]`, "m"), `section ${section}`);
  }
  assert.match(text, /END OF TERMS AND CONDITIONS/);
  assert.match(text, /^ {3}Copyright \d{4} the rivet authors$/m);
  for (const file of ["CONTRIBUTING.md", "SECURITY.md"]) {
    assert.ok((await read(file)).length > 1000, `${file} is written`);
  }
});
