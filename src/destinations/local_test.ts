import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { Destination, ObjectMeta, Upload } from "../core/destination.ts";
import { LocalDestination } from "./local.ts";
import {
  assertCode,
  bytes,
  commitText,
  failure,
  names,
  tempDir,
} from "../../tests/_helpers/local_files.ts";

async function write(upload: Upload, ...parts: string[]): Promise<void> {
  await ReadableStream.from(parts.map(bytes)).pipeTo(upload.writable);
}

async function collect(dest: Destination, prefix: string): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  for await (const meta of dest.list(prefix)) out.push(meta);
  return out;
}

Deno.test("LocalDestination resolves path, else prefix, else the base folder, creating parents", async () => {
  const base = await tempDir();
  try {
    const byPath = await LocalDestination.open({ path: "a/b", prefix: "ignored" }, {
      baseDir: base,
    });
    assert.equal(byPath.root, join(base, "a/b"));
    assert.equal(byPath.uri, `file://${join(base, "a/b")}`);
    assert.ok((await Deno.stat(join(base, "a/b"))).isDirectory);
    const byPrefix = await LocalDestination.open({ prefix: "p" }, { baseDir: base });
    assert.equal(byPrefix.root, join(base, "p"));
    const byDefault = await LocalDestination.open({}, { baseDir: base });
    assert.equal(byDefault.root, base);
    assert.deepEqual(byDefault.capabilities, {
      persistent: true,
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a local object is visible only after commit, staged in a 0600 dot-temp file", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const upload = await dest.create("orders_20240101_000000.csv");
    await write(upload, "id\n", "1\n", "2\n");
    assert.deepEqual(await names(dest.root), [".orders_20240101_000000.csv.tmp"]);
    assert.equal(
      (await Deno.stat(join(dest.root, ".orders_20240101_000000.csv.tmp"))).mode! & 0o777,
      0o600,
    );
    assert.deepEqual(await collect(dest, ""), [], "listings skip staging files");
    const meta = await upload.commit();
    assert.deepEqual(meta, { key: "orders_20240101_000000.csv", size: 7 });
    assert.deepEqual(await names(dest.root), ["orders_20240101_000000.csv"]);
    assert.equal(await Deno.readTextFile(join(dest.root, meta.key)), "id\n1\n2\n");
    await upload.abort();
    assert.deepEqual(
      await names(dest.root),
      ["orders_20240101_000000.csv"],
      "abort after commit is a no-op",
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("commit renames to a final key given at the end, creating its folder", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    const upload = await dest.create("x.csv");
    await write(upload, "abc");
    const meta = await upload.commit("sub/dir/x_part0.csv");
    assert.deepEqual(meta, { key: "sub/dir/x_part0.csv", size: 3 });
    assert.deepEqual(await names(base), ["sub"]);
    assert.equal(await Deno.readTextFile(join(base, "sub/dir/x_part0.csv")), "abc");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("commit closes a writable the caller left open and waits for its writes", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    const upload = await dest.create("open.bin");
    const writer = upload.writable.getWriter();
    void writer.write(new Uint8Array(100_000).fill(7));
    await assert.rejects(upload.commit(), /locked/);
    writer.releaseLock();
    assert.equal((await upload.commit()).size, 100_000);
    assert.equal((await Deno.stat(join(base, "open.bin"))).size, 100_000);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("abort removes the staged file and is idempotent", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    const upload = await dest.create("gone.parquet");
    const writer = upload.writable.getWriter();
    await writer.write(bytes("partial"));
    await upload.abort(new Error("source failed"));
    await upload.abort();
    assert.deepEqual(await names(base), []);
    await assert.rejects(writer.write(bytes("more")), /aborted/);
    await assert.rejects(upload.commit(), /after aborted/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("disposing the destination aborts uploads left open", async () => {
  const base = await tempDir();
  try {
    {
      await using dest = await LocalDestination.open({}, { baseDir: base });
      const upload = await dest.create("left_open.csv");
      await upload.writable.getWriter().write(bytes("x"));
    }
    assert.deepEqual(await names(base), []);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a committed file is never overwritten unless the key is created with overwrite", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    const first = await dest.create("part.csv");
    await write(first, "first");
    await first.commit();
    const second = await dest.create("part.csv");
    await write(second, "second");
    const error = await second.commit().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PermanentError);
    assert.equal(error.code, "destination.exists");
    assert.match(error.message, /part\.csv/);
    assert.equal(await Deno.readTextFile(join(base, "part.csv")), "first");
    assert.deepEqual(await names(base), ["part.csv"], "the refused temp file is removed");

    for (const body of ["one", "two"]) {
      const manifest = await dest.create("manifest.json", { overwrite: true });
      await write(manifest, body);
      await manifest.commit();
    }
    assert.equal(await Deno.readTextFile(join(base, "manifest.json")), "two");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a stale staging symlink is unlinked, never followed, and the canary is unchanged", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const canary = join(base, "canary.txt");
    await Deno.writeTextFile(canary, "do not touch");
    await Deno.symlink(canary, join(dest.root, ".t.csv.tmp"));
    const upload = await dest.create("t.csv");
    await write(upload, "fresh");
    await upload.commit();
    assert.equal(await Deno.readTextFile(canary), "do not touch");
    assert.equal(await Deno.readTextFile(join(dest.root, "t.csv")), "fresh");
    assert.deepEqual(await names(dest.root), ["t.csv"]);
    assert.equal((await Deno.lstat(join(dest.root, "t.csv"))).isSymlink, false);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("keys that leave the destination root are refused with destination.bad_key", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    for (const key of ["/etc/passwd", "../x.csv", "a/../../x", "a\0b", "a\\b", "", "dir/", "C:x"]) {
      const error = await dest.create(key).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof ConfigError, `key ${JSON.stringify(key)} must be refused`);
      assert.equal(error.code, "destination.bad_key");
    }
    const upload = await dest.create("ok..name.csv");
    await write(upload, "x");
    await assert.rejects(
      upload.commit("../escape.csv"),
      (e: unknown) => e instanceof ConfigError && e.code === "destination.bad_key",
    );
    assert.deepEqual(
      await names(base),
      [".ok..name.csv.tmp"],
      "a refused final key keeps the upload",
    );
    await upload.abort();
    assert.deepEqual(await names(base), []);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("list walks folders recursively, filters by prefix and skips staging files", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    for (
      const [key, body] of [["b.csv", "bb"], ["a.csv", "a"], ["_quarantine/r1/a.csv", "qqq"], [
        "ab/c.csv",
        "c",
      ]]
    ) {
      const upload = await dest.create(key!);
      await write(upload, body!);
      await upload.commit();
    }
    const pending = await dest.create("pending.csv");
    await Deno.symlink(join(base, "a.csv"), join(base, "link.csv"));
    assert.deepEqual(await collect(dest, ""), [
      { key: "_quarantine/r1/a.csv", size: 3 },
      { key: "a.csv", size: 1 },
      { key: "ab/c.csv", size: 1 },
      { key: "b.csv", size: 2 },
    ]);
    assert.deepEqual((await collect(dest, "a")).map((m) => m.key), ["a.csv", "ab/c.csv"]);
    assert.deepEqual((await collect(dest, "_quarantine/")).map((m) => m.key), [
      "_quarantine/r1/a.csv",
    ]);
    assert.deepEqual(await collect(dest, "nothing/here"), []);
    await pending.abort();
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("SIGKILL in the commit window leaves only the dot-temp file, and a re-run replaces it", async () => {
  const base = await tempDir();
  try {
    const script = join(base, "writer.ts");
    await Deno.writeTextFile(
      script,
      `import { LocalDestination } from ${
        JSON.stringify(new URL("./local.ts", import.meta.url).href)
      };
const dest = await LocalDestination.open({ path: "out" }, { baseDir: ${JSON.stringify(base)} });
const upload = await dest.create("data.csv");
await ReadableStream.from([new TextEncoder().encode("id\\n1\\n")]).pipeTo(upload.writable);
await upload.commit();
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", script],
      env: { RIVET_TEST_BLOCK_AT: "before_commit_rename", RIVET_TEST_BLOCK_MS: "30000" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("blocking")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /blocking 30000 ms at before_commit_rename/);
    child.kill("SIGKILL");
    const status = await child.status;
    await reader.cancel();
    assert.equal(status.signal, "SIGKILL");
    const out = join(base, "out");
    assert.deepEqual(await names(out), [".data.csv.tmp"]);

    const canary = join(base, "canary.txt");
    await Deno.writeTextFile(canary, "canary");
    await Deno.remove(join(out, ".data.csv.tmp"));
    await Deno.symlink(canary, join(out, ".data.csv.tmp"));
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const upload = await dest.create("data.csv");
    await write(upload, "id\n1\n");
    await upload.commit();
    assert.deepEqual(await names(out), ["data.csv"]);
    assert.equal(await Deno.readTextFile(join(out, "data.csv")), "id\n1\n");
    assert.equal(await Deno.readTextFile(canary), "canary");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("stat reports a committed file and undefined for a missing file, folder or staging file", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    await commitText(dest, "sub/a.csv", "id\n1\n");
    assert.deepEqual(await dest.stat("sub/a.csv"), { key: "sub/a.csv", size: 5 });
    assert.equal(await dest.stat("sub/b.csv"), undefined);
    assert.equal(await dest.stat("nope/a.csv"), undefined, "a missing folder is no object");
    assert.equal(await dest.stat("sub/a.csv/x"), undefined, "a file is no folder");
    const pending = await dest.create("pending.csv");
    await pending.writable.getWriter().write(bytes("half"));
    assert.equal(await dest.stat("pending.csv"), undefined, "a staging file is not followed");
    assert.equal(await dest.stat(".pending.csv.tmp"), undefined, "a staging name is no object");
    await pending.abort();
    assertCode(await failure(dest.stat("sub")), PermanentError, "destination.not_a_file");
    const aborted = new AbortController();
    aborted.abort(new Error("stop"));
    await assert.rejects(dest.stat("sub/a.csv", { signal: aborted.signal }), /stop/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("stat, read and move refuse a symlink at the key, and the outside canary is untouched", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const canary = join(base, "canary.txt");
    await Deno.writeTextFile(canary, "secret");
    await Deno.symlink(canary, join(dest.root, "leak.csv"));
    await commitText(dest, "inside.csv", "in");
    await Deno.symlink(join(dest.root, "inside.csv"), join(dest.root, "alias.csv"));

    for (const key of ["leak.csv", "alias.csv"]) {
      assertCode(await failure(dest.stat(key)), PermanentError, "destination.symlink");
      assertCode(await failure(dest.read(key)), PermanentError, "destination.symlink");
      assertCode(
        await failure(dest.move(key, `_quarantine/r1/${key}`)),
        PermanentError,
        "destination.symlink",
      );
    }
    const error = await failure(dest.stat("leak.csv"));
    assert.ok(error instanceof PermanentError && error.message.includes("leak.csv"));
    assert.equal(await Deno.readTextFile(canary), "secret");
    assert.ok((await Deno.lstat(join(dest.root, "leak.csv"))).isSymlink, "the link stays");
    assert.deepEqual(await names(dest.root), ["alias.csv", "inside.csv", "leak.csv"]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a symlinked folder on the key's path is never entered by stat, read, move or list", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const outside = join(base, "outside");
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "secret.csv"), "secret");
    await Deno.symlink(outside, join(dest.root, "sub"));
    await commitText(dest, "mine.csv", "mine");

    assertCode(await failure(dest.stat("sub/secret.csv")), PermanentError, "destination.symlink");
    assertCode(await failure(dest.read("sub/secret.csv")), PermanentError, "destination.symlink");
    assertCode(
      await failure(dest.move("sub/secret.csv", "taken.csv")),
      PermanentError,
      "destination.symlink",
    );
    // A planted `_quarantine` link must not carry the quarantined file out of the root.
    await Deno.symlink(outside, join(dest.root, "_quarantine"));
    assertCode(
      await failure(dest.move("mine.csv", "_quarantine/r1/mine.csv")),
      PermanentError,
      "destination.symlink",
    );
    assert.deepEqual(await names(outside), ["secret.csv"], "nothing was created outside");
    assert.equal(await Deno.readTextFile(join(dest.root, "mine.csv")), "mine");
    assert.deepEqual(await collect(dest, "sub/"), []);
    assert.deepEqual(await collect(dest, "_quarantine/r1/"), []);
    assert.deepEqual((await collect(dest, "")).map((m) => m.key), ["mine.csv"]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("read streams back the exact bytes of a committed object", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    // Several read chunks, every byte value.
    const body = new Uint8Array(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 8)) & 0xff;
    await commitText(dest, "p/x.parquet", body);
    assert.deepEqual(await readAll(await dest.read("p/x.parquet")), body);
    assert.deepEqual(await readAll(await dest.read("p/./x.parquet")), body);

    const empty = await commitText(dest, "empty.csv", new Uint8Array(0));
    assert.equal(empty.size, 0);
    assert.equal((await readAll(await dest.read("empty.csv"))).length, 0);

    const missing = await failure(dest.read("p/y.parquet"));
    assertCode(missing, PermanentError, "destination.not_found");
    assert.match((missing as Error).message, /p\/y\.parquet/);
    assertCode(await failure(dest.read(".p.tmp")), PermanentError, "destination.not_found");
    assertCode(await failure(dest.read("p")), PermanentError, "destination.not_a_file");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("an abort signal stops a read between chunks and closes the file", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    await commitText(dest, "big.bin", new Uint8Array(1 << 20));
    const controller = new AbortController();
    const reader = (await dest.read("big.bin", { signal: controller.signal })).getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    controller.abort(new Error("cancelled by the run"));
    await assert.rejects(
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })(),
      /cancelled by the run/,
    );
    const opened = await failure(dest.read("big.bin", { signal: controller.signal }));
    assert.match(String(opened), /cancelled by the run/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("move into _quarantine/<run_id>/ creates the folders, removes the source and keeps the content", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    await commitText(dest, "x.parquet", "PAR1 body PAR1");
    await commitText(dest, "keep.parquet", "other");
    await dest.move("x.parquet", "_quarantine/r1/x.parquet");
    assert.equal(await dest.stat("x.parquet"), undefined);
    assert.deepEqual(await names(base), ["_quarantine", "keep.parquet"]);
    assert.equal(await Deno.readTextFile(join(base, "_quarantine/r1/x.parquet")), "PAR1 body PAR1");
    assert.equal((await Deno.stat(join(base, "_quarantine/r1/x.parquet"))).nlink, 1);
    assert.deepEqual(await collect(dest, "_quarantine/"), [
      { key: "_quarantine/r1/x.parquet", size: 14 },
    ]);
    // A second run quarantines into its own folder beside the first.
    await commitText(dest, "x.parquet", "again");
    await dest.move("x.parquet", "_quarantine/r2/x.parquet");
    assert.deepEqual(await names(join(base, "_quarantine")), ["r1", "r2"]);
    assert.equal(await Deno.readTextFile(join(base, "keep.parquet")), "other");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("move never overwrites: an existing target leaves both files untouched", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    await commitText(dest, "x.parquet", "new");
    await commitText(dest, "_quarantine/r1/x.parquet", "old");
    const error = await failure(dest.move("x.parquet", "_quarantine/r1/x.parquet"));
    assertCode(error, PermanentError, "destination.exists");
    assert.match((error as Error).message, /_quarantine\/r1\/x\.parquet/);
    assert.equal(await Deno.readTextFile(join(base, "x.parquet")), "new");
    assert.equal(await Deno.readTextFile(join(base, "_quarantine/r1/x.parquet")), "old");
    assert.equal((await Deno.stat(join(base, "x.parquet"))).nlink, 1);
    assertCode(
      await failure(dest.move("x.parquet", "x.parquet")),
      PermanentError,
      "destination.exists",
    );
    // A link planted at the target counts as existing and is not followed.
    const canary = join(base, "canary.txt");
    await Deno.writeTextFile(canary, "canary");
    await Deno.symlink(canary, join(base, "_quarantine/r1/y.parquet"));
    assertCode(
      await failure(dest.move("x.parquet", "_quarantine/r1/y.parquet")),
      PermanentError,
      "destination.exists",
    );
    assert.equal(await Deno.readTextFile(canary), "canary");
    assert.equal(await Deno.readTextFile(join(base, "x.parquet")), "new");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("move of a missing key rejects with destination.not_found and creates nothing", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({}, { baseDir: base });
    const error = await failure(dest.move("gone.parquet", "_quarantine/r1/gone.parquet"));
    assertCode(error, PermanentError, "destination.not_found");
    assert.match((error as Error).message, /gone\.parquet/);
    assert.deepEqual(await names(base), []);
    const pending = await dest.create("pending.csv");
    assertCode(
      await failure(dest.move(".pending.csv.tmp", "q/p.csv")),
      PermanentError,
      "destination.not_found",
    );
    await pending.abort();
    assertCode(await failure(dest.move("a", "b")), PermanentError, "destination.not_found");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("stat, read and move refuse keys that leave the root, and move refuses staging targets", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    await commitText(dest, "ok.csv", "ok");
    await Deno.writeTextFile(join(base, "outside.csv"), "outside");
    for (
      const key of ["/etc/passwd", "../outside.csv", "a/../../outside.csv", "a\0b", "a\\b", ""]
    ) {
      const label = JSON.stringify(key);
      assertCode(await failure(dest.stat(key)), ConfigError, "destination.bad_key");
      assertCode(await failure(dest.read(key)), ConfigError, "destination.bad_key");
      assertCode(await failure(dest.move(key, "q/x.csv")), ConfigError, "destination.bad_key");
      assertCode(
        await failure(dest.move("ok.csv", key)),
        ConfigError,
        "destination.bad_key",
      );
      assert.equal(await Deno.readTextFile(join(dest.root, "ok.csv")), "ok", label);
    }
    assertCode(
      await failure(dest.move("ok.csv", "q/.ok.csv.tmp")),
      ConfigError,
      "destination.bad_key",
    );
    assert.deepEqual(await names(dest.root), ["ok.csv"], "no folder was created");
    assert.deepEqual(await names(base), ["out", "outside.csv"]);
    assert.equal(await Deno.readTextFile(join(base, "outside.csv")), "outside");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("remove deletes a committed file, and an absent key or a staging file is left alone", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    await commitText(dest, "sub/probe", "probe");
    await commitText(dest, "keep.csv", "keep");
    await dest.remove("sub/probe");
    assert.equal(await dest.stat("sub/probe"), undefined);
    assert.deepEqual(await names(join(dest.root, "sub")), []);
    await dest.remove("sub/probe");
    await dest.remove("nope/missing.csv");
    const pending = await dest.create("pending.csv");
    await pending.writable.getWriter().write(bytes("half"));
    await dest.remove("pending.csv");
    await dest.remove(".pending.csv.tmp");
    assert.deepEqual(await names(dest.root), [".pending.csv.tmp", "keep.csv", "sub"]);
    await pending.abort();
    assertCode(await failure(dest.remove("sub")), PermanentError, "destination.not_a_file");
    const aborted = new AbortController();
    aborted.abort(new Error("stop"));
    await assert.rejects(dest.remove("keep.csv", { signal: aborted.signal }), /stop/);
    assert.equal(await Deno.readTextFile(join(dest.root, "keep.csv")), "keep");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("remove refuses a symlink at the key or on its folders and bad keys, deleting nothing", async () => {
  const base = await tempDir();
  try {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: base });
    const outside = join(base, "outside");
    await Deno.mkdir(outside);
    const canary = join(outside, "canary.txt");
    await Deno.writeTextFile(canary, "secret");
    await Deno.symlink(canary, join(dest.root, "leak.csv"));
    await Deno.symlink(outside, join(dest.root, "sub"));
    assertCode(await failure(dest.remove("leak.csv")), PermanentError, "destination.symlink");
    assertCode(
      await failure(dest.remove("sub/canary.txt")),
      PermanentError,
      "destination.symlink",
    );
    assert.ok((await Deno.lstat(join(dest.root, "leak.csv"))).isSymlink, "the link stays");
    await Deno.writeTextFile(join(base, "outside.csv"), "outside");
    for (
      const key of ["/etc/passwd", "../outside.csv", "a/../../outside.csv", "a\0b", "a\\b", ""]
    ) {
      assertCode(await failure(dest.remove(key)), ConfigError, "destination.bad_key");
    }
    assert.equal(await Deno.readTextFile(canary), "secret");
    assert.equal(await Deno.readTextFile(join(base, "outside.csv")), "outside");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
