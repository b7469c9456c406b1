import assert from "node:assert/strict";
import { measureProcess, median, parseTimeReport, sizeOfFiles } from "./_bench_measure.ts";

const ALLOCATE_200MB = `
  const a = new Uint8Array(200 * 1024 * 1024);
  for (let i = 0; i < a.length; i += 4096) a[i] = 1;
  console.error("child says hi");
  // Stay alive a moment at the peak: the /proc poller samples every 25 ms and must see it.
  await new Promise((r) => setTimeout(r, 300));
  Deno.exit(3);
`;

Deno.test("parseTimeReport separates the child's stderr from GNU time's verbose report", () => {
  const text = "child line 1\nchild line 2\nCommand exited with non-zero status 3\n" +
    '\tCommand being timed: "deno run x.ts"\n\tUser time (seconds): 0.10\n' +
    "\tMaximum resident set size (kbytes): 123456\n\tExit status: 3\n";
  assert.deepEqual(parseTimeReport(text), {
    peakRssKb: 123456,
    rest: "child line 1\nchild line 2\n",
  });
  assert.deepEqual(parseTimeReport("no report here"), { peakRssKb: 0, rest: "no report here" });
});

for (const pollProc of [false, true]) {
  Deno.test(`measureProcess sees a 200 MB peak and the exit code (${pollProc ? "/proc polling" : "/usr/bin/time"})`, async () => {
    const m = await measureProcess(Deno.execPath(), {
      args: ["eval", ALLOCATE_200MB],
      pollProc,
    });
    assert.equal(m.code, 3);
    assert.ok(m.peakRssMb >= 200 && m.peakRssMb < 600, `peak ${m.peakRssMb} MB`);
    assert.ok(m.wallSeconds > 0 && m.wallSeconds < 30);
    assert.match(m.stderr, /child says hi/);
    assert.doesNotMatch(m.stderr, /Maximum resident/);
  });
}

Deno.test("median takes the middle value, or the mean of the two middle ones", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("sizeOfFiles adds up matching files recursively and treats a missing folder as empty", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/a`);
    await Deno.writeFile(`${dir}/x.csv`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/a/y.csv`, new Uint8Array(5));
    await Deno.writeFile(`${dir}/a/manifest.json`, new Uint8Array(100));
    assert.deepEqual(await sizeOfFiles(dir, [".csv"]), { bytes: 15, files: 2 });
    assert.deepEqual(await sizeOfFiles(`${dir}/missing`, [".csv"]), { bytes: 0, files: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
