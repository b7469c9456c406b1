import assert from "node:assert/strict";
import { isParentGone, ParentGone, watchParent } from "./parent_watch.ts";

Deno.test("watchParent: the end of the parent's pipe seals, aborts with ParentGone, then ends the process", async () => {
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const stdin = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
  const steps: string[] = [];
  let deadline!: () => void;
  const ended = new Promise<void>((resolve) => deadline = resolve);
  const signal = watchParent({
    stdin,
    deadlineMs: 50,
    seal: () => steps.push("seal"),
    onDeadline: () => {
      steps.push("exit");
      deadline();
    },
  });
  signal.addEventListener("abort", () => steps.push("abort"));
  // Bytes from the parent (it never writes any) change nothing.
  feed.enqueue(new Uint8Array([1, 2, 3]));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(signal.aborted, false);
  feed.close();
  await ended;
  assert.deepEqual(steps, ["seal", "abort", "exit"], "writes are sealed before anything stops");
  assert.ok(isParentGone(signal.reason));
  assert.ok(signal.reason instanceof ParentGone);
  assert.equal(isParentGone(new DOMException("interrupted", "AbortError")), false);
});

Deno.test("watchParent: a broken pipe counts as a parent that is gone", async () => {
  const stdin = new ReadableStream<Uint8Array>({ start: (c) => c.error(new Error("EPIPE")) });
  let exited!: () => void;
  const ended = new Promise<void>((resolve) => exited = resolve);
  const signal = watchParent({ stdin, deadlineMs: 0, seal: () => {}, onDeadline: () => exited() });
  await ended;
  assert.ok(isParentGone(signal.reason));
});
