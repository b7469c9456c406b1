import assert from "node:assert/strict";
import {
  DEFAULT_RETRY,
  existsError,
  isNetworkFailure,
  isTransientStatus,
  NETWORK_CODES,
  notFoundError,
  retryRequest,
  storeBackoffMs,
  type StoreFacts,
  storeFailure,
} from "./_store_errors.ts";

Deno.test("storeBackoffMs doubles from the base up to the cap, jittered up to twice the step", () => {
  for (let failed = 0; failed < 12; failed++) {
    const step = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** failed);
    for (let i = 0; i < 50; i++) {
      const wait = storeBackoffMs(failed, DEFAULT_RETRY);
      assert.ok(wait >= step, `${wait} >= ${step}`);
      assert.ok(wait <= Math.min(DEFAULT_RETRY.maxDelayMs, 2 * step), `${wait} within the cap`);
    }
  }
  assert.deepEqual(DEFAULT_RETRY, { retries: 5, baseDelayMs: 200, maxDelayMs: 10_000 });
});

Deno.test("transient statuses are 5xx, 408 and 429; one list of network failures for every store", () => {
  for (const status of [500, 501, 502, 503, 504, 599, 408, 429]) {
    assert.equal(isTransientStatus(status), true, String(status));
  }
  for (const status of [undefined, 0, 200, 400, 401, 403, 404, 409, 412]) {
    assert.equal(isTransientStatus(status), false, String(status));
  }
  for (const code of ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ENOTFOUND"]) {
    assert.ok(NETWORK_CODES.has(code), code);
    assert.ok(isNetworkFailure({ code }), code);
  }
  // One list for every store: the codes only one SDK reports are retried everywhere.
  for (const code of ["REQUEST_SEND_ERROR", "UND_ERR_SOCKET", "ENETDOWN", "ESOCKETTIMEDOUT"]) {
    assert.ok(NETWORK_CODES.has(code), code);
  }
  assert.ok(isNetworkFailure(new Deno.errors.ConnectionReset("reset")));
  assert.ok(isNetworkFailure(new Error("fetch failed", { cause: { code: "ECONNRESET" } })));
  assert.ok(!isNetworkFailure(new Error("bad request")));
});

Deno.test("existsError and notFoundError carry the stable codes and the fix", () => {
  const exists = existsError("S3", "s3://b/k.csv");
  assert.equal(exists.code, "destination.exists");
  assert.equal(
    exists.message,
    "S3 destination refuses to overwrite the committed object 's3://b/k.csv'; remove it or " +
      "write to another prefix (rivet never replaces a committed part)",
  );
  const cause = new Error("404");
  const missing = notFoundError("GCS", "gs://b/k", cause);
  assert.equal(missing.code, "destination.not_found");
  assert.equal(
    missing.message,
    "GCS destination has no object 'gs://b/k'; check the key, or list the destination to see " +
      "what it holds",
  );
  assert.equal(missing.cause, cause);
  assert.equal(notFoundError("S3", "s3://b/x").cause, undefined);
});

const facts = (warnings: string[]): StoreFacts => ({
  store: "Azure",
  policy: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 },
  warn: (message, code) => warnings.push(`${code}: ${message}`),
  bucketLabel: "container 'c' in storage account 'a'",
  bucketHint: "az storage container create --name c --account-name a",
  authHint: "account_key_env",
  endpoint: "http://127.0.0.1:10000/a",
});

Deno.test("retryRequest warns every store's retries the same way and words the last failure", async () => {
  const warnings: string[] = [];
  const request = { action: "upload block 1 of", target: "azure://a/c/k.bin", signal: undefined };
  const error = await retryRequest(facts(warnings), request, {
    transient: () => true,
    failure: (cause, attempts) =>
      storeFailure(facts(warnings), "unavailable", request, {
        error: cause,
        reason: "HTTP 503",
        attempts,
      }),
    reason: () => "HTTP 503",
  }, () => Promise.reject(new Error("busy"))).catch((e) => e);
  assert.equal(error.code, "destination.unavailable");
  assert.equal(error.exitCode, 2);
  assert.match(
    error.message,
    /^Azure store at http:\/\/127\.0\.0\.1:10000\/a is unavailable: upload block 1 of 'azure:\/\/a\/c\/k\.bin' failed after 3 attempts \(HTTP 503\)/,
  );
  assert.equal(warnings.length, 2);
  assert.match(
    warnings[0]!,
    /^destination\.retrying: Azure upload block 1 of 'azure:\/\/a\/c\/k\.bin' failed \(HTTP 503\); retry 1\/2 in \d+ ms$/,
  );
});

Deno.test("storeFailure gives each kind its stable code and the store's hint", () => {
  const request = { action: "list objects under", target: "azure://a/c/" };
  const failure = { error: new Error("x"), reason: "HTTP 404 ContainerNotFound", attempts: 1 };
  const codes = ([
    "bucket_not_found",
    "not_found",
    "auth_failed",
    "exists",
    "checksum_mismatch",
    "unavailable",
    "request_failed",
  ] as const).map((kind) => {
    const error = storeFailure(facts([]), kind, request, failure);
    assert.equal(error.cause, failure.error, kind);
    return error.code;
  });
  assert.deepEqual(codes, [
    "destination.bucket_not_found",
    "destination.not_found",
    "destination.auth_failed",
    "destination.exists",
    "destination.checksum_mismatch",
    "destination.unavailable",
    "destination.request_failed",
  ]);
  const missing = storeFailure(facts([]), "bucket_not_found", request, failure);
  assert.match(
    missing.message,
    /container 'c' in storage account 'a' does not exist.*create the container/,
  );
  assert.equal(missing.hint, "az storage container create --name c --account-name a");
  assert.equal(
    storeFailure(facts([]), "auth_failed", request, failure).hint,
    "check account_key_env",
  );
});
