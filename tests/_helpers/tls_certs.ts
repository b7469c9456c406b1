/**
 * Throwaway TLS material for servers in tests: two CAs and a server certificate for 127.0.0.1
 * and localhost signed by the first (MariaDB and PostgreSQL over TLS, the PostgreSQL state
 * backend over TLS).
 *
 * @module
 */

/** Files of {@linkcode makeCertificates}. */
export interface Certs {
  readonly dir: string;
  /** CA that signed the server certificate. */
  readonly ca: string;
  /** A CA that signed nothing the server uses. */
  readonly otherCa: string;
  readonly cert: string;
  readonly key: string;
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
}

function caArgs(dir: string, name: string): string[] {
  return [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=rivet test ${name}`,
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    `${dir}/${name}.pem`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ];
}

/**
 * Two throwaway CAs and a server certificate for 127.0.0.1 and localhost signed by the first.
 *
 * @param options `forPostgres`: the key private (0600) and, when the tests run as root, the
 *   folder owned by the postgres OS user, as a PostgreSQL server with `ssl=on` requires.
 */
export async function makeCertificates(
  options: { readonly forPostgres?: boolean } = {},
): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_tls_" });
  await Promise.all([
    openssl(caArgs(dir, "ca")),
    openssl(caArgs(dir, "other_ca")),
    openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      `${dir}/server.key`,
      "-out",
      `${dir}/server.csr`,
    ]),
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/server.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    `${dir}/server.pem`,
    "-extfile",
    `${dir}/ext.cnf`,
  ]);
  if (options.forPostgres) {
    await Deno.chmod(`${dir}/server.key`, 0o600);
    if (Deno.uid?.() === 0) {
      const out = await new Deno.Command("chown", { args: ["-R", "postgres:postgres", dir] })
        .output();
      if (!out.success) throw new Error("chown of the certificate folder failed");
    }
    await Deno.chmod(dir, 0o755);
  }
  return {
    dir,
    ca: `${dir}/ca.pem`,
    otherCa: `${dir}/other_ca.pem`,
    cert: `${dir}/server.pem`,
    key: `${dir}/server.key`,
  };
}
