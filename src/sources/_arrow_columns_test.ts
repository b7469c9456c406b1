/**
 * `FixedBuilder.slot()` may replace `data` with a larger array, so a statement that reads
 * `b.data` before calling `b.slot()` (JavaScript evaluates `b.data[b.slot()] = v` left to right)
 * writes into the old, dropped array and leaves a zero at every growth point. This test finds
 * such statements in the sources' row decoders, and shows the effect on the builder itself.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Int32 } from "../core/arrow.ts";
import { FixedBuilder } from "./_arrow_columns.ts";

const DATA_BEFORE_SLOT = [
  /(\w+)\.data\[\1\.slot\(\)/, // b.data[b.slot()] = v
  /(\w+)\.data, \1\.slot\(\)/, // write(…, b.data, b.slot() * 2)
  /(\w+)\.data\.set\([^;]*\1\.slot\(\)/, // b.data.set(bytes, b.slot() * 16)
];

Deno.test("no source reads a builder's data before slot() may grow it", async () => {
  const dir = fileURLToPath(new URL(".", import.meta.url));
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    for await (const e of Deno.readDir(path)) {
      const file = `${path}/${e.name}`;
      if (e.isDirectory) await walk(file);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        (await Deno.readTextFile(file)).split("\n").forEach((line, i) => {
          if (DATA_BEFORE_SLOT.some((re) => re.test(line))) {
            found.push(`${file.slice(dir.length)}:${i + 1}: ${line.trim()}`);
          }
        });
      }
    }
  };
  await walk(dir.replace(/\/$/, ""));
  assert.deepEqual(found, []);
});

Deno.test("the pattern is what loses values: data read before slot() grows misses the write", () => {
  const b = new FixedBuilder<Int32Array>(Int32Array);
  b.reset(8);
  for (let i = 0; i < 8; i++) b.data[b.slot()] = i + 1;
  b.data[b.slot()] = 9; // grows here: the 9 goes to the dropped array
  assert.equal(b.finish(new Int32()).values[8], 0);
  assert.ok(DATA_BEFORE_SLOT[0]!.test("b.data[b.slot()] = 9;"));
});
