import assert from "node:assert/strict";
import { ConfigError, PermanentError } from "../core/errors.ts";
import { StdoutDestination } from "./stdout.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function memorySink(): {
  sink: WritableStream<Uint8Array>;
  text: () => string;
  closed: () => boolean;
} {
  const chunks: Uint8Array[] = [];
  let closed = false;
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => void chunks.push(chunk),
    close: () => void (closed = true),
  });
  const text = () => chunks.map((c) => new TextDecoder().decode(c)).join("");
  return { sink, text, closed: () => closed };
}

Deno.test("stdout copies each part in order and never closes the sink", async () => {
  const { sink, text, closed } = memorySink();
  const dest = new StdoutDestination(sink);
  assert.deepEqual(dest.capabilities, {
    persistent: false,
  });
  assert.equal(dest.uri, "stdout");
  const first = await dest.create("a_part0.csv");
  const second = await dest.create("a_part1.csv");
  // The second part starts writing first: it must wait for the first part's turn.
  const secondDone = ReadableStream.from([bytes("3\n"), bytes("4\n")]).pipeTo(second.writable);
  await ReadableStream.from([bytes("1\n"), bytes("2\n")]).pipeTo(first.writable);
  assert.deepEqual(await first.commit(), { key: "a_part0.csv", size: 4 });
  await secondDone;
  assert.deepEqual(await second.commit(), { key: "a_part1.csv", size: 4 });
  assert.equal(text(), "1\n2\n3\n4\n");
  assert.equal(closed(), false);
  assert.equal(sink.locked, false, "the writer lock is released after each part");
  const listed = [];
  for await (const meta of dest.list("")) listed.push(meta);
  assert.deepEqual(listed, []);
});

Deno.test("an aborted stdout part releases its turn to the next part", async () => {
  const { sink, text } = memorySink();
  const dest = new StdoutDestination(sink);
  const first = await dest.create("x.csv");
  await first.writable.getWriter().write(bytes("half"));
  await first.abort();
  const second = await dest.create("y.csv");
  await ReadableStream.from([bytes("whole")]).pipeTo(second.writable);
  await second.commit();
  assert.equal(text(), "halfwhole", "bytes already sent cannot be taken back");
});

Deno.test("stdout validates keys like every destination", async () => {
  const dest = new StdoutDestination(memorySink().sink);
  await assert.rejects(
    dest.create("../x"),
    (e: unknown) => e instanceof ConfigError && e.code === "destination.bad_key",
  );
});

Deno.test("stdout writes the real standard output without closing it between parts", async () => {
  const script = `import { StdoutDestination } from ${
    JSON.stringify(new URL("./stdout.ts", import.meta.url).href)
  };
const dest = new StdoutDestination();
for (const key of ["a", "b"]) {
  const upload = await dest.create(key);
  await ReadableStream.from([new TextEncoder().encode(key + "\\n")]).pipeTo(upload.writable);
  await upload.commit();
}
console.log("still open");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stderr), "");
  assert.equal(new TextDecoder().decode(out.stdout), "a\nb\nstill open\n");
});

Deno.test("stdout has no objects: stat resolves undefined, read and move are unsupported", async () => {
  const { sink, text } = memorySink();
  const dest = new StdoutDestination(sink);
  const upload = await dest.create("a.csv");
  await ReadableStream.from([bytes("sent")]).pipeTo(upload.writable);
  await upload.commit();
  assert.equal(await dest.stat("a.csv"), undefined, "even a part just sent has no object");
  for (
    const attempt of [() => dest.read("a.csv"), () => dest.move("a.csv", "_quarantine/r1/a.csv")]
  ) {
    const error = await attempt().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PermanentError, String(error));
    assert.equal(error.code, "destination.unsupported");
    assert.match(error.message, /stdout keeps no objects/);
    assert.match(error.message, /a\.csv/);
  }
  assert.equal(text(), "sent");
  for (
    const attempt of [() => dest.stat("../x"), () => dest.read("/x"), () => dest.move("a", "../b")]
  ) {
    await assert.rejects(
      attempt(),
      (e: unknown) => e instanceof ConfigError && e.code === "destination.bad_key",
    );
  }
});
