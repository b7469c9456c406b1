import assert from "node:assert/strict";
import { md5Password, ScramClient, ScramError } from "./_auth.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("ScramClient reproduces the RFC 7677 SCRAM-SHA-256 example exchange", async () => {
  const c = new ScramClient("pencil", "rOprNGfwEbeRWgbNEkqO", "user");
  assert.equal(dec.decode(c.clientFirst()), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const final = await c.clientFinal(enc.encode(
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  ));
  assert.equal(
    dec.decode(final),
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  c.verifyServerFinal(enc.encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
});

Deno.test("ScramClient refuses a server signature that does not match", async () => {
  const c = new ScramClient("pencil", "rOprNGfwEbeRWgbNEkqO", "user");
  await c.clientFinal(enc.encode(
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  ));
  assert.throws(
    () => c.verifyServerFinal(enc.encode("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")),
    ScramError,
  );
});

Deno.test("ScramClient refuses a server nonce that does not extend its own", async () => {
  const c = new ScramClient("pencil", "abc");
  await assert.rejects(() => c.clientFinal(enc.encode("r=xyz123,s=AAAA,i=4096")), ScramError);
});

Deno.test("md5Password matches PostgreSQL's md5(md5(password + user) + salt) scheme", () => {
  // Expected value computed independently with Python's hashlib.
  assert.equal(
    md5Password("rivet_md5", "pw-S3CR3T_M4RK3R", new Uint8Array([1, 2, 3, 4])),
    "md5380398bb207bec050b25a7de55c52ad2",
  );
});
