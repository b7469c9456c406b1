import assert from "node:assert/strict";
import { deniedPermission } from "./denied_permission.ts";
import { DataIntegrityError, PermanentError, toErrorInfo, TransientError } from "./errors.ts";

const refusal = (message: string) => Object.assign(new Error(message), { name: "NotCapable" });

Deno.test("deniedPermission words each kind of Deno refusal as the flag to add", () => {
  const cases: [string, string][] = [
    [
      'Requires net access to "db:5432", run again with the --allow-net flag',
      "--allow-net=db:5432",
    ],
    [
      'Requires env access to "DATABASE_URL", run again with the --allow-env flag',
      "--allow-env=DATABASE_URL",
    ],
    [
      'Requires read access to "/opt/rivet/src/x.ts", run again with the --allow-read flag',
      "--allow-read=/opt/rivet/src/x.ts",
    ],
    // The state database and its SQLite side files: the folder, which SQLite writes into.
    [
      'Requires write access to "/etc/rivet/.rivet_state.db-wal", run again with the --allow-write flag',
      "--allow-write=/etc/rivet",
    ],
    [
      'Requires sys access to "osRelease", run again with the --allow-sys flag',
      "--allow-sys=osRelease",
    ],
    ["Requires run access", "--allow-run"],
  ];
  for (const [message, flag] of cases) {
    assert.equal(deniedPermission(refusal(message))?.flag, flag, message);
    // A worker's error event carries the text only.
    assert.equal(deniedPermission(message)?.flag, flag, message);
  }
  const d = deniedPermission(
    refusal('Requires net access to "db:5432", run again with the --allow-net flag'),
  );
  assert.equal(
    d?.message,
    'rivet needs --allow-net=db:5432 (Deno refused net access to "db:5432")',
  );
  assert.equal(deniedPermission(new Error("connection refused")), undefined);
  assert.equal(deniedPermission("chunk worker 0 crashed: boom"), undefined);
  // The OS refusing a file (EACCES) is no Deno permission: no flag would fix it.
  const eacces = Object.assign(new Error("Permission denied (os error 13)"), {
    name: "PermissionDenied",
  });
  assert.equal(deniedPermission(eacces), undefined);
});

Deno.test("toErrorInfo: a refusal is permanent (exit 1, never retried), even wrapped as transient", () => {
  const raw = refusal('Requires env access to "X", run again with the --allow-env flag');
  const info = toErrorInfo(raw);
  assert.equal(info.exitCode, 1);
  assert.equal(info.code, "permission.denied");
  assert.equal(info.message, 'rivet needs --allow-env=X (Deno refused env access to "X")');
  assert.equal(info.hint, undefined, "one line");
  const wrapped = new TransientError("upload failed", {
    code: "destination.transient",
    cause: raw,
  });
  assert.equal(toErrorInfo(wrapped).exitCode, 1);
  assert.equal(toErrorInfo(new TransientError("lost", { code: "source.lost" })).exitCode, 2);
  // A layer's own wording of the refusal gives way to the one line naming the flag.
  const worded = new PermanentError("S3 destination could not inspect '_SUCCESS': " + raw.message, {
    code: "destination.failed",
    cause: raw,
  });
  assert.equal(toErrorInfo(worded).message, info.message);
  // The duplicate guard's class is about rows already committed: it stays.
  const guard = new DataIntegrityError("killed after committing", {
    code: "run.duplicate_guard",
    cause: raw,
  });
  assert.equal(toErrorInfo(guard).exitCode, 3);
});
