/**
 * Hostile input through the real CLI (a subprocess of `cli.ts`): alias bombs, huge or endless
 * files, FIFOs and devices where a file is expected, a 200 KB query literal, `-p` values that try
 * to add YAML structure, Ctrl-C while the config loads. Each case must end with the documented
 * exit code within a bounded time; a child that overruns its deadline is killed so that a
 * regression fails the test instead of hanging the suite.
 *
 * No database is needed: every source URL points at a closed loopback port, so reaching the
 * network would show up as a transient error (exit 2), never as a hang.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Bounded, runBounded } from "../_helpers/bounded_cli.ts";

const closedUrl = "postgresql://u@127.0.0.1:9/db";

function configText(dir: string, extra = "", exportExtra = ""): string {
  return `source:
  type: postgres
  url: ${closedUrl}
exports:
  - name: orders
    table: orders
    format: csv
    destination: { type: local, path: ${dir}/out }
${exportExtra}${extra}`;
}

async function mkfifo(path: string): Promise<void> {
  const res = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(res.success, "mkfifo failed");
}

function report(label: string, res: Bounded): string {
  return `${label}: exit ${res.code} in ${res.ms} ms${res.killed ? " (KILLED at deadline)" : ""}` +
    `\n${res.stderr.slice(0, 2000)}`;
}

// An alias bomb: 9^9 (387 million) leaves from a few hundred bytes.
function aliasBomb(indent: string): string {
  const levels = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
  const lines = [`${indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`];
  for (let i = 1; i < levels.length; i++) {
    const prev = `*${levels[i - 1]}`;
    lines.push(`${indent}${levels[i]}: &${levels[i]} [${Array(9).fill(prev).join(",")}]`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("a YAML alias bomb is refused in bounded time with exit 1, wherever it sits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    const cases: [string, string][] = [
      ["under an unknown top-level key", configText(dir, `unknown_key:\n${aliasBomb("  ")}`)],
      [
        "under exports[].cdc (a block read leniently)",
        configText(dir, "", `    cdc:\n${aliasBomb("      ")}`),
      ],
      [
        "under exports[].columns (a free-form mapping)",
        configText(dir, "", `    columns:\n${aliasBomb("      ")}`),
      ],
    ];
    for (const [label, text] of cases) {
      const path = join(dir, "bomb.yaml");
      await Deno.writeTextFile(path, text);
      const res = await runBounded(["run", "-c", path], { timeoutMs: 20_000 });
      console.log(`  alias bomb ${label}: exit ${res.code} in ${res.ms} ms`);
      assert.ok(!res.killed, report(label, res));
      assert.equal(res.code, 1, report(label, res));
      assert.match(res.stderr, /alias/i, report(label, res));
      assert.ok(res.ms < 5_000, report(label, res));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-c /dev/zero, a FIFO or an oversized config is refused at once with exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    const fifo = join(dir, "fifo.yaml");
    await mkfifo(fifo);
    const big = join(dir, "big.yaml");
    // A valid config padded with comments to 3 MiB: over the config-file size limit.
    await Deno.writeTextFile(big, configText(dir) + `# ${"x".repeat(1022)}\n`.repeat(3 * 1024));
    const cases: [string, string, RegExp][] = [
      ["/dev/zero", "/dev/zero", /not a regular file/],
      ["a FIFO", fifo, /not a regular file/],
      ["a directory", dir, /not a regular file/],
      ["a 3 MiB config", big, /larger than/],
    ];
    for (const [label, path, message] of cases) {
      const res = await runBounded(["run", "-c", path], { timeoutMs: 20_000 });
      console.log(`  -c ${label}: exit ${res.code} in ${res.ms} ms`);
      assert.ok(!res.killed, report(label, res));
      assert.equal(res.code, 1, report(label, res));
      assert.match(res.stderr, message, report(label, res));
      assert.ok(res.ms < 5_000, report(label, res));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FIFOs and devices named by query_file, url_file and tls.ca_file are refused at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    await mkfifo(join(dir, "q.sql"));
    await mkfifo(join(dir, "db.url"));
    await mkfifo(join(dir, "ca.pem"));
    const cases: [string, string][] = [
      [
        "query_file FIFO",
        `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n  - name: orders\n` +
        `    query_file: q.sql\n    format: csv\n    destination: { type: local, path: ${dir}/out }\n`,
      ],
      [
        "url_file FIFO",
        `source:\n  type: postgres\n  url_file: db.url\nexports:\n  - name: orders\n` +
        `    table: orders\n    format: csv\n    destination: { type: local, path: ${dir}/out }\n`,
      ],
      [
        "ca_file FIFO",
        `source:\n  type: postgres\n  url: ${closedUrl}\n  tls: { mode: verify-full, ca_file: ca.pem }\n` +
        `exports:\n  - name: orders\n    table: orders\n    format: csv\n` +
        `    destination: { type: local, path: ${dir}/out }\n`,
      ],
      [
        "url_file /dev/zero",
        `source:\n  type: postgres\n  url_file: /dev/zero\nexports:\n  - name: orders\n` +
        `    table: orders\n    format: csv\n    destination: { type: local, path: ${dir}/out }\n`,
      ],
    ];
    for (const [label, text] of cases) {
      const path = join(dir, "rivet.yaml");
      await Deno.writeTextFile(path, text);
      // The working directory is the config folder: relative paths resolve there either way.
      const res = await runBounded(["run", "-c", path], { cwd: dir, timeoutMs: 20_000 });
      console.log(`  ${label}: exit ${res.code} in ${res.ms} ms`);
      assert.ok(!res.killed, report(label, res));
      assert.equal(res.code, 1, report(label, res));
      assert.match(res.stderr, /not a regular file/, report(label, res));
      assert.ok(res.ms < 5_000, report(label, res));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("relative ca_file resolves from the config folder, not the working directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  const elsewhere = await Deno.makeTempDir({ prefix: "rivet_hostile_cwd_" });
  try {
    await Deno.mkdir(join(dir, "certs"));
    // Not a valid certificate: what matters is that the file is found and read.
    await Deno.writeTextFile(join(dir, "certs", "ca.pem"), "not a certificate\n");
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\n  tls: { mode: verify-full, ca_file: certs/ca.pem }\n` +
        `exports:\n  - name: orders\n    table: orders\n    format: csv\n` +
        `    destination: { type: local, path: ${dir}/out }\n`,
    );
    const res = await runBounded(["run", "-c", path], { cwd: elsewhere, timeoutMs: 30_000 });
    assert.ok(!res.killed, report("ca_file", res));
    // Before: "Cannot read source.tls.ca_file 'certs/ca.pem': No such file" (read from the CWD).
    assert.ok(!/No such file|cannot read|does not exist/i.test(res.stderr), report("ca_file", res));
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("a config holding a 200 KB query literal loads and fails fast", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    const path = join(dir, "rivet.yaml");
    const literal = "x".repeat(200_000);
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\n  tuning: { max_retries: 0 }\nexports:\n` +
        `  - name: orders\n    query: "SELECT '${literal}' AS v"\n    format: csv\n` +
        `    destination: { type: local, path: ${dir}/out }\n`,
    );
    const res = await runBounded(["run", "-c", path], { timeoutMs: 60_000 });
    console.log(`  200 KB literal: exit ${res.code} in ${res.ms} ms`);
    assert.ok(!res.killed, report("200 KB literal", res));
    assert.equal(res.code, 2, report("200 KB literal", res));
    assert.ok(res.ms < 8_000, report("200 KB literal", res));
    // An unknown key next to it: the error path (redaction, rendering) is fast as well.
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
        `  - name: orders\n    query: "SELECT '${literal}' AS v"\n    format: csv\n    bogus: 1\n` +
        `    destination: { type: local, path: ${dir}/out }\n`,
    );
    const bad = await runBounded(["run", "-c", path], { timeoutMs: 60_000 });
    console.log(`  200 KB literal + unknown key: exit ${bad.code} in ${bad.ms} ms`);
    assert.ok(!bad.killed, report("unknown key", bad));
    assert.equal(bad.code, 1, report("unknown key", bad));
    assert.ok(bad.ms < 8_000, report("unknown key", bad));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Ctrl-C while the config loads ends the process with 130 promptly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(path, configText(dir));
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      let sentAt = 0;
      const res = await runBounded(["run", "-c", path], {
        env: { RIVET_TEST_BLOCK_AT: "config_load", RIVET_TEST_BLOCK_MS: "60000" },
        timeoutMs: 30_000,
        onStderr: (text, child) => {
          if (sentAt === 0 && text.includes("blocking")) {
            sentAt = performance.now();
            child.kill(signal);
          }
        },
      });
      const after = sentAt === 0 ? -1 : Math.round(performance.now() - sentAt);
      console.log(`  ${signal} during load: exit ${res.code}, ${after} ms after the signal`);
      assert.ok(sentAt > 0, report(signal, res));
      assert.ok(!res.killed, report(signal, res));
      assert.equal(res.code, 130, report(signal, res));
      assert.equal(res.signal, null, "rivet handled the signal itself");
    }
    // A large document: the signal lands while the YAML is being parsed (the hook only marks the
    // start of the load here), and the parse stops at its next yield.
    const big = join(dir, "big.yaml");
    await Deno.writeTextFile(
      big,
      configText(dir) + "extra:\n" +
        Array.from({ length: 150_000 }, (_, i) => `  k${i}: v`).join("\n") + "\n",
    );
    let sentAt = 0;
    const res = await runBounded(["run", "-c", big], {
      env: { RIVET_TEST_BLOCK_AT: "config_load", RIVET_TEST_BLOCK_MS: "0" },
      timeoutMs: 30_000,
      onStderr: (text, child) => {
        if (sentAt === 0 && text.includes("blocking")) {
          sentAt = performance.now();
          setTimeout(() => child.kill("SIGINT"), 200);
        }
      },
    });
    const after = sentAt === 0 ? -1 : Math.round(performance.now() - sentAt - 200);
    console.log(`  SIGINT while parsing 1.7 MiB: exit ${res.code}, ${after} ms after the signal`);
    assert.equal(res.code, 130, report("SIGINT while parsing", res));
    assert.ok(after < 2_000, `${after} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a -p value with newlines cannot add YAML structure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_hostile_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n  - name: orders\n` +
        `    query: SELECT \${COLS} FROM t\n    format: csv\n` +
        `    destination: { type: local, path: ${dir}/out }\n` +
        `# A comment naming \${NOT_SET_ANYWHERE} must not require it\n`,
    );
    const injected = "1 FROM t\n    format: csv\n    destination: { type: stdout }\n" +
      "  - name: injected\n    table: t2\n    format: csv\n    destination: { type: stdout }\n" +
      "  - name: tail\n    query: SELECT 1";
    const res = await runBounded(["doctor", "-c", path, "-p", `COLS=${injected}`], {
      timeoutMs: 30_000,
    });
    assert.ok(!res.killed, report("doctor", res));
    assert.match(res.stdout, /\[OK\] config: .*\(1 export\)/, report("doctor", res) + res.stdout);
    assert.ok(!res.stdout.includes("stdout (nothing to probe)"), res.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
