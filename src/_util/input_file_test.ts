import assert from "node:assert/strict";
import { join } from "node:path";
import { InterruptedError } from "../core/errors.ts";
import { InputFileError, readInputText } from "./input_file.ts";

async function refusal(path: string, maxBytes = 1024): Promise<InputFileError> {
  const error = await readInputText(path, { maxBytes }).catch((e: unknown) => e);
  assert.ok(error instanceof InputFileError, `${path}: ${error}`);
  assert.equal(error.exitCode, 1);
  return error;
}

Deno.test("readInputText refuses FIFOs, devices and directories without opening them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_input_" });
  try {
    const fifo = join(dir, "pipe");
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    const started = performance.now();
    assert.match((await refusal(fifo)).message, /^is a FIFO \(named pipe\), not a regular file$/);
    assert.match((await refusal("/dev/zero")).message, /character device/);
    assert.match((await refusal(dir)).message, /directory/);
    assert.equal((await refusal("/dev/null")).code, "config.not_regular_file");
    assert.ok(performance.now() - started < 1_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readInputText enforces the size cap and reads regular files whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_input_" });
  try {
    const path = join(dir, "f.txt");
    await Deno.writeTextFile(path, "\ufeffhé\n" + "x".repeat(200_000));
    assert.equal((await refusal(path, 100_000)).code, "config.file_too_large");
    const text = await readInputText(path, { maxBytes: 300_000 });
    assert.ok(text.startsWith("hé\n"), "BOM dropped, UTF-8 decoded");
    assert.equal(text.length, 3 + 200_000);
    const missing = await readInputText(join(dir, "nope"), { maxBytes: 10 }).catch((e) => e);
    assert.ok(missing instanceof Deno.errors.NotFound, "OS errors stay Deno's own");
    const controller = new AbortController();
    controller.abort();
    const aborted = await readInputText(path, { maxBytes: 300_000, signal: controller.signal })
      .catch((e) => e);
    assert.ok(aborted instanceof InterruptedError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
