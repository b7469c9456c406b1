/**
 * The `mode: cdc` scenarios every engine with a change log runs through `rivet run` (a real
 * process): changes of every common type arrive typed as a full export of the table types them,
 * the changes of one transaction land in one part, and a run killed at any point of the part
 * cycle followed by another run loses nothing and repeats nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readParquet } from "../_helpers/parquet_oracle.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

/** What a scenario needs of an engine's test server. */
export interface CdcEngine {
  /** `postgres` or `mysql`. */
  readonly type: string;
  /** Source URL. */
  readonly url: string;
  /** Runs SQL (several statements, `BEGIN; …; COMMIT;` allowed) as an administrator. */
  sql(text: string): Promise<void>;
  /** `CREATE TABLE <name> (id … PRIMARY KEY, …)` with a column of every common type. */
  typesTable(name: string): string;
  /** An INSERT of rows `ids` into the types table, values varied by id, some NULL. */
  typesInsert(name: string, ids: readonly number[]): string;
  /** An UPDATE of row `id` of the types table changing several columns. */
  typesUpdate(name: string, id: number): string;
  /** Extra `cdc:` keys of this engine (`slot: …`, `server_id: …`), one flow mapping body. */
  readonly cdcKeys: string;
  /** Statements as one transaction (default `BEGIN; …; COMMIT;`). */
  txn?(statements: readonly string[]): string;
  /** Turns capture on for a new table (SQL Server), then waits until changes are captured. */
  enable?(table: string): Promise<void>;
  /** Waits until `n` changes of `table` are in the log the reader reads (SQL Server's job). */
  captured?(table: string, n: number): Promise<void>;
}

function txnOf(engine: CdcEngine, statements: readonly string[]): string {
  return engine.txn ? engine.txn(statements) : `BEGIN; ${statements.join("; ")}; COMMIT;`;
}

/** A config with one cdc export of `table` to `./out/<table>` and one full export of it. */
function plan(engine: CdcEngine, table: string, cdc: string): string {
  return [
    "source:",
    `  type: ${engine.type}`,
    "  url_env: CDC_SOURCE_URL",
    "exports:",
    `  - name: ${table}_cdc`,
    `    table: ${table}`,
    "    mode: cdc",
    "    format: parquet",
    `    destination: {type: local, path: ./out/${table}}`,
    `    cdc: {until_current: true, ${engine.cdcKeys}${cdc ? `, ${cdc}` : ""}}`,
    `  - name: ${table}_full`,
    `    table: ${table}`,
    "    format: parquet",
    `    destination: {type: local, path: ./full/${table}}`,
    "",
  ].join("\n");
}

/** Starts `rivet run -c plan.yaml -e <export>` in `dir`. */
function launch(
  engine: CdcEngine,
  dir: string,
  exportName: string,
  env: Record<string, string> = {},
  extra: readonly string[] = [],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, "run", "-c", "plan.yaml", "-e", exportName, ...extra],
    cwd: dir,
    env: { CDC_SOURCE_URL: engine.url, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function finished(child: Deno.ChildProcess): Promise<{ code: number; stderr: string }> {
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function runOk(
  engine: CdcEngine,
  dir: string,
  exportName: string,
  extra: readonly string[] = [],
): Promise<string> {
  const { code, stderr } = await finished(launch(engine, dir, exportName, {}, extra));
  assert.equal(code, 0, stderr);
  return stderr;
}

/** Every row of every `cdc-*.parquet` in `folder`, by part name. */
async function partsOf(folder: string): Promise<Map<string, Record<string, unknown>[]>> {
  const names: string[] = [];
  for await (const e of Deno.readDir(folder)) {
    if (e.isFile && /^cdc-\d{6}\.parquet$/.test(e.name)) names.push(e.name);
  }
  names.sort();
  const out = new Map<string, Record<string, unknown>[]>();
  for (const name of names) out.set(name, (await readParquet(join(folder, name))).rows);
  return out;
}

/** The leaf columns of a Parquet file's schema: name → physical, logical and converted type. */
async function leafTypes(path: string): Promise<Record<string, string>> {
  const { metadata } = await readParquet(path);
  const out: Record<string, string> = {};
  for (const el of metadata.schema.slice(1)) {
    out[el.name] = JSON.stringify([el.type, el.logical_type, el.converted_type, el.scale]);
  }
  return out;
}

function firstParquet(folder: string): string {
  for (const e of Deno.readDirSync(folder)) {
    if (e.isFile && e.name.endsWith(".parquet")) return join(folder, e.name);
  }
  throw new Error(`no Parquet file in ${folder}`);
}

/**
 * Inserts, updates and deletes of every common type arrive typed as a full export types them;
 * a transaction's changes land in one part.
 *
 * @param engine The engine under test.
 */
export async function typedChangesScenario(engine: CdcEngine): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const t = "cdc_types";
    await engine.sql(`${engine.typesTable(t)};`);
    await engine.enable?.(t);
    await Deno.writeTextFile(join(dir, "plan.yaml"), plan(engine, t, "rollover: 1"));
    // The first run marks where capture starts (PostgreSQL creates its slot here).
    await runOk(engine, dir, `${t}_cdc`);
    const out = join(dir, "out", t);
    assert.equal((await partsOf(out)).size, 0);
    await Deno.stat(join(out, "_SUCCESS"));

    await engine.sql(`${engine.typesInsert(t, [1, 2, 3])};`);
    await engine.sql(
      txnOf(engine, [
        engine.typesUpdate(t, 1),
        engine.typesUpdate(t, 2),
        `DELETE FROM ${t} WHERE id = 3`,
      ]),
    );
    await engine.sql(`${engine.typesInsert(t, [4])};`);
    await engine.captured?.(t, 7);
    // --validate: each part re-counted from its bytes before its commit, the folder read back.
    const validated = await runOk(engine, dir, `${t}_cdc`, ["--validate"]);
    assert.match(validated, /validated: +pass/);
    await runOk(engine, dir, `${t}_full`);

    const parts = [...(await partsOf(out)).values()];
    const ops = parts.map((rows) => rows.map((r) => `${r.__op}:${r.id}`));
    // rollover 1: every transaction is its own part, the three changes of the second together.
    assert.deepEqual(ops, [
      ["insert:1", "insert:2", "insert:3"],
      ["update:1", "update:2", "delete:3"],
      ["insert:4"],
    ]);
    for (const rows of parts) {
      for (const row of rows) assert.ok(JSON.parse(String(row.__pos)), "__pos is JSON");
    }
    // Types: the table's columns of a cdc part are those of the full export.
    const full = await leafTypes(firstParquet(join(dir, "full", t)));
    const cdc = await leafTypes(join(out, [...(await partsOf(out)).keys()][0]!));
    assert.ok(cdc.__op && cdc.__pos);
    delete cdc.__op;
    delete cdc.__pos;
    assert.deepEqual(cdc, full);
    // Values: the after-images of rows 1, 2 (updated) and 4 equal the full export's rows.
    const fullRows = new Map(
      (await readParquet(firstParquet(join(dir, "full", t)))).rows.map((r) => [Number(r.id), r]),
    );
    const latest = new Map<number, Record<string, unknown>>();
    for (const rows of parts) {
      for (const { __op: _op, __pos: _pos, ...row } of rows) latest.set(Number(row.id), row);
    }
    for (const id of [1, 2, 4]) assert.deepEqual(latest.get(id), fullRows.get(id), `row ${id}`);
    assert.equal(fullRows.has(3), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Polls until `path` exists (at most `ms`). */
async function appears(path: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (true) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${path} did not appear`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Runs killed inside the part cycle (SIGKILL after a part's commit, before its checkpoint; an
 * exit between the checkpoint and the acknowledgement), then a clean run: every change exactly
 * once across the parts.
 *
 * @param engine The engine under test.
 */
export async function killScenario(engine: CdcEngine): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const t = "cdc_kill";
    await engine.sql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40));`);
    await engine.enable?.(t);
    await Deno.writeTextFile(join(dir, "plan.yaml"), plan(engine, t, "rollover: 100"));
    await runOk(engine, dir, `${t}_cdc`);
    // 30 transactions of 40 inserts, then 10 transactions updating 20 rows each.
    const statements: string[] = [];
    for (let txn = 0; txn < 30; txn++) {
      const values = Array.from({ length: 40 }, (_, i) => {
        const id = txn * 40 + i + 1;
        return `(${id}, 'v${id}')`;
      });
      statements.push(txnOf(engine, [`INSERT INTO ${t} VALUES ${values.join(", ")}`]));
    }
    for (let txn = 0; txn < 10; txn++) {
      statements.push(
        txnOf(engine, [
          `UPDATE ${t} SET v = 'u${txn}' WHERE id > ${txn * 20} AND id <= ${txn * 20 + 20}`,
        ]),
      );
    }
    await engine.sql(statements.join("\n"));
    await engine.captured?.(t, 1400);
    const out = join(dir, "out", t);

    // 1: SIGKILL while blocked after the first part's commit, before its checkpoint.
    const blocked = launch(engine, dir, `${t}_cdc`, {
      RIVET_TEST_BLOCK_AT: "cdc_after_part_commit",
      RIVET_TEST_BLOCK_MS: "30000",
    });
    await appears(join(out, "cdc-000000.parquet"), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    blocked.kill("SIGKILL");
    await finished(blocked);
    // 2: exit right after a checkpoint was saved, before the server heard of it.
    const crashed = await finished(
      launch(engine, dir, `${t}_cdc`, { RIVET_TEST_CRASH_AT: "cdc_after_flush_before_ack" }),
    );
    assert.equal(crashed.code, 86, crashed.stderr);
    // 3: a clean run drains the rest.
    await runOk(engine, dir, `${t}_cdc`);

    const changes: string[] = [];
    for (const rows of (await partsOf(out)).values()) {
      for (const row of rows) changes.push(`${row.__op}:${row.id}:${row.v}`);
    }
    const expected: string[] = [];
    for (let id = 1; id <= 1200; id++) expected.push(`insert:${id}:v${id}`);
    for (let txn = 0; txn < 10; txn++) {
      for (let id = txn * 20 + 1; id <= txn * 20 + 20; id++) expected.push(`update:${id}:u${txn}`);
    }
    assert.equal(changes.length, expected.length, "every change exactly once");
    assert.deepEqual([...changes].sort(), [...expected].sort());
    const manifest = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
    assert.equal(manifest.status, "success");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `rivet cdc <args>` in `dir` with the source URL in `CDC_SOURCE_URL`. */
async function cdcCli(
  engine: CdcEngine,
  dir: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, "cdc", "--source-env", "CDC_SOURCE_URL", ...args],
    cwd: dir,
    env: { CDC_SOURCE_URL: engine.url },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * `rivet cdc` without a config: NDJSON lines on stdout, a checkpoint file the next call resumes
 * from, and `--output` writing typed parts like `mode: cdc`.
 *
 * @param engine The engine under test.
 */
export async function ndjsonScenario(engine: CdcEngine): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const t = "cdc_ndjson";
    await engine.sql(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40), amount DECIMAL(20,2));`,
    );
    const common = ["--table", t, "--until-current", "--checkpoint", "pos.json"];
    const keys = engine.type === "postgres" ? ["--slot", "rivet_ndjson"] : ["--server-id", "4281"];
    const first = await cdcCli(engine, dir, [...common, ...keys]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "");
    await engine.sql(
      `INSERT INTO ${t} VALUES (1, 'a', 123456789012345678.25), (2, NULL, NULL); ` +
        `UPDATE ${t} SET v = 'b' WHERE id = 1; DELETE FROM ${t} WHERE id = 2;`,
    );
    const second = await cdcCli(engine, dir, [...common, ...keys]);
    assert.equal(second.code, 0, second.stderr);
    const lines = second.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => `${l.op}:${l.table}`), [
      `insert:${t}`,
      `insert:${t}`,
      `update:${t}`,
      `delete:${t}`,
    ]);
    assert.deepEqual(lines[0].after, { id: 1, v: "a", amount: "123456789012345678.25" });
    assert.equal(lines[0].before, null);
    assert.equal(lines[3].after, null);
    assert.equal(lines[3].before.id, 2);
    assert.ok(typeof lines[0].pos === "object");
    // The checkpoint moved past them: a third call prints nothing.
    const third = await cdcCli(engine, dir, [...common, ...keys]);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(third.stdout, "");
    // --output: the same changes as typed parts, like mode: cdc (its own checkpoint file).
    const files = await cdcCli(engine, dir, [
      "--table",
      t,
      "--until-current",
      "--checkpoint",
      "files.json",
      "--output",
      "files",
      "--format",
      "csv",
      ...keys.map((k) => k.replace("rivet_ndjson", "rivet_files")).map((k) =>
        k === "4281" ? "4282" : k
      ),
    ]);
    assert.equal(files.code, 0, files.stderr);
    await Deno.stat(join(dir, "files", "_SUCCESS"));
    // Usage errors name the fix.
    const none = await cdcCli(engine, dir, ["--until-current"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /at least one --table/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A streaming run (no `until_current`), sandboxed as the compiled binary runs it: changes made
 * while it waits arrive, SIGTERM makes it finish its part and exit 0 with `_SUCCESS`, and the next
 * run goes on from there.
 *
 * @param engine The engine under test.
 */
export async function streamScenario(engine: CdcEngine): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const t = "cdc_stream";
    await engine.sql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40));`);
    await engine.enable?.(t);
    const yaml = plan(engine, t, "").replace("until_current: true, ", "until_current: false, ");
    await Deno.writeTextFile(join(dir, "plan.yaml"), yaml);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--unstable-worker-options",
        cliPath,
        "run",
        "-c",
        "plan.yaml",
        "-e",
        `${t}_cdc`,
        "--sandbox",
        "--events",
        "ndjson",
      ],
      cwd: dir,
      env: { CDC_SOURCE_URL: engine.url },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    /** Reads events until one matches (at most `ms`). */
    const waitFor = async (match: (e: Record<string, unknown>) => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const event = JSON.parse(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          if (match(event)) return event;
          continue;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), Math.max(0, end - Date.now()));
        });
        const read = await Promise.race([lines.read(), late]);
        clearTimeout(timer);
        if (read === "late") break;
        if (read.done) throw new Error(`the run ended early: ${await stderr}`);
        buffered += read.value;
      }
      child.kill("SIGKILL");
      throw new Error(`timed out waiting for an event: ${await stderr}`);
    };
    await waitFor((e) => e.type === "export_started", 60_000);
    // The stream is open once the start position is known; give the reader a moment.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await engine.sql(txnOf(engine, [`INSERT INTO ${t} VALUES (1, 'a'), (2, 'b')`]));
    await engine.sql(txnOf(engine, [`UPDATE ${t} SET v = 'c' WHERE id = 1`]));
    await engine.captured?.(t, 3);
    await waitFor((e) => e.type === "batch_read" && Number(e.total_rows) >= 3, 60_000);
    child.kill("SIGTERM");
    while (!(await lines.read()).done) { /* drain */ }
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    const out = join(dir, "out", t);
    const rows = [...(await partsOf(out)).values()].flat().map((r) => `${r.__op}:${r.id}:${r.v}`);
    assert.deepEqual(rows, ["insert:1:a", "insert:2:b", "update:1:c"]);
    await Deno.stat(join(out, "_SUCCESS"));
    // The next run (draining) starts after what the stopped one wrote.
    await engine.sql(`DELETE FROM ${t} WHERE id = 2;`);
    await engine.captured?.(t, 4);
    await Deno.writeTextFile(join(dir, "plan.yaml"), plan(engine, t, ""));
    await runOk(engine, dir, `${t}_cdc`);
    const all = [...(await partsOf(out)).values()].flat().map((r) => `${r.__op}:${r.id}`);
    assert.deepEqual(all, ["insert:1", "insert:2", "update:1", "delete:2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `rivet doctor` on a cdc export: ready on `readyUrl` (and nothing created), refused with the fix
 * on `unreadyUrl`.
 *
 * @param engine The engine (its type).
 * @param urls The ready server's URL and one without what capture needs.
 * @param expect The ready line and the refusal's fix, as patterns.
 */
export async function doctorScenario(
  engine: Pick<CdcEngine, "type">,
  urls: { ready: string; unready: string },
  expect: { ready: RegExp; fix: RegExp },
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "plan.yaml"),
      `source:\n  type: ${engine.type}\n  url_env: DOCTOR_URL\nexports:\n  - name: d\n    table: d\n` +
        "    mode: cdc\n    format: csv\n    destination: {type: local, path: ./out}\n",
    );
    const doctor = async (url: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", cliPath, "doctor", "-c", "plan.yaml"],
        cwd: dir,
        env: { DOCTOR_URL: url },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      return { code: out.code, text: text.decode(out.stdout) + text.decode(out.stderr) };
    };
    const ok = await doctor(urls.ready);
    assert.equal(ok.code, 0, ok.text);
    assert.match(ok.text, expect.ready);
    const bad = await doctor(urls.unready);
    assert.equal(bad.code, 1, bad.text);
    assert.match(bad.text, expect.fix);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
