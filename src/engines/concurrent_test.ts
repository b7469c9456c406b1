import assert from "node:assert/strict";
import type { Outcome } from "../core/events.ts";
import type { ExportSpec } from "../core/spec.ts";
import { runInLanes } from "./concurrent.ts";

const spec = (name: string, stdout = false) =>
  ({ name, destination: { kind: stdout ? "stdout" : "local" } }) as unknown as ExportSpec;
const outcome = (name: string) => ({ export: name }) as unknown as Outcome;

Deno.test("runInLanes starts every export at once but runs stdout exports one after another", async () => {
  const exports = [spec("a"), spec("s1", true), spec("b"), spec("s2", true)];
  let running = 0;
  let stdoutRunning = 0;
  let peak = 0;
  let stdoutPeak = 0;
  const run = async (s: ExportSpec) => {
    const toStdout = s.destination.kind === "stdout";
    running++;
    if (toStdout) stdoutRunning++;
    peak = Math.max(peak, running);
    stdoutPeak = Math.max(stdoutPeak, stdoutRunning);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    if (toStdout) stdoutRunning--;
    return [outcome(s.name)];
  };
  const outcomes = await runInLanes(exports, run, new AbortController().signal);
  assert.deepEqual(outcomes.map((o) => o.export), ["a", "s1", "b", "s2"], "export order");
  assert.equal(peak, 3, "a, b and one stdout export at once");
  assert.equal(stdoutPeak, 1, "stdout exports never overlap");
});

Deno.test("runInLanes starts no further stdout export once the run is aborted", async () => {
  const controller = new AbortController();
  const started: string[] = [];
  const run = (s: ExportSpec) => {
    started.push(s.name);
    controller.abort();
    return Promise.resolve([outcome(s.name)]);
  };
  const outcomes = await runInLanes([spec("s1", true), spec("s2", true)], run, controller.signal);
  assert.deepEqual(started, ["s1"]);
  assert.deepEqual(outcomes.map((o) => o.export), ["s1"]);
});
