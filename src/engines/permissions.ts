/**
 * The permissions one export needs, and their two renderings: `--allow-*` flags for a child
 * `deno run` process and `deno.permissions` for a Web Worker (the compiled binary, which takes no
 * permission flags, narrows inside a worker instead). Everything not listed is denied: a child
 * exporting `orders` to `./out/orders` can reach its database and write its folder, nothing else.
 *
 * What an export touches, and why each entry is here:
 * - net: the source `host:port` as written (the sources connect by that name, and Deno checks the
 *   name, not the address it resolves to), or read and write on a Unix socket folder; a
 *   destination `endpoint` when one is set;
 * - read: the config folder (the config file, `query_file`s, the state database, `.rivet/`; the
 *   query-file check resolves the folder's real path, so the folder itself must be readable), a
 *   `url_file` and a TLS `ca_file` wherever they are (relative ones start at the config folder),
 *   the local destination folder (listing and
 *   resume reconciliation), parquet-wasm's `.wasm` file (the Parquet writer reads it with
 *   `Deno.readFile` when it is not handed a compiled module), and rivet's own code: `src/` and
 *   the npm package folder (a Web Worker loads its module graph under the process's read
 *   permission, unlike the main thread, so chunk workers and the export worker need them);
 * - write: the local destination folder (relative paths resolve against the working directory,
 *   as `openDestination` does; the static part before a `{date}` placeholder, which is only known
 *   when the export starts), the state database with its `-wal`/`-shm`/`-journal` files and the
 *   `.rivet/` reports folder (both next to the config);
 * - env: `url_env`, `password_env`, every `${NAME}` of the config and the `query_file` that is not
 *   a `--param` (the child loads and substitutes them again), and the `RIVET_TEST_*`
 *   fault-injection hooks. (The YAML parser's own debug variables are never read: see
 *   `config/_yaml_env.ts`.)
 *
 * Layer: engines.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../core/errors.ts";
import type { ConnectionInfo } from "../core/source.ts";
import type { ConfigSpec, DestinationSpec, ExportSpec } from "../core/spec.ts";
import { resolveConnection } from "../config/mod.ts";
import { localRoot as destinationRoot } from "../plan/resolve.ts";
import { fillPlaceholders } from "../plan/placeholders.ts";
import { INPUT_LIMITS, readInputText } from "../_util/input_file.ts";
import { BUNDLED_PARQUET_WASM, bundleRoot } from "../_util/bundle.ts";
import { parseStateUrl, stateUrlVariable } from "./state.ts";

/** What one export may touch. Lists are sorted and free of duplicates; empty means none. */
export interface ExportPermissions {
  /** `host:port` entries (`[v6]:port` for IPv6 literals). */
  readonly net: readonly string[];
  /** Absolute paths (a folder covers everything below it). */
  readonly read: readonly string[];
  /** Absolute paths (a folder covers everything below it). */
  readonly write: readonly string[];
  /** Variable names; a trailing `*` matches a prefix (`RIVET_TEST_*`). */
  readonly env: readonly string[];
  /** Every variable (the Azure SDK enumerates the environment); `env` is then informative. */
  readonly allEnv?: boolean;
  /** `--allow-sys` names (the cloud SDKs' user agents and home lookups). */
  readonly sys?: readonly string[];
}

/**
 * The environment variables each cloud SDK reads on its own, found by running each SDK against
 * its emulator under a narrowed `--allow-env`: S3 and GCS as lists; Azure needs every variable
 * (a `debug` package inside its HTTP proxy agent lists the whole environment).
 */
const CLOUD_ENV: Readonly<Record<"s3" | "gcs", readonly string[]>> = {
  s3: ["AWS_*", "HOME", "USERPROFILE", "HOMEPATH", "HOMEDRIVE", "_X_AMZN_TRACE_ID"],
  gcs: [
    "GOOGLE_*",
    "GCE_METADATA_*",
    "CLOUDSDK_CONFIG",
    "TEENY_REQUEST_WARN_CONCURRENT_REQUESTS",
    "DEBUG",
    "READABLE_STREAM",
    "STORAGE_EMULATOR_HOST",
    "FUNCTION_NAME",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "HOME",
    "APPDATA",
  ],
};

/** `--allow-sys` names the cloud SDKs need (their user agents, home-directory lookups). */
const CLOUD_SYS = ["osRelease", "homedir", "hostname", "networkInterfaces", "userInfo"];
/**
 * The machine's host name: tedious sends it in its login (SQL Server shows it as `host_name`);
 * the shared chunk ledger of a PostgreSQL state store records it on each claim.
 */
const HOSTNAME_SYS = ["hostname"];

/** Context of {@linkcode exportPermissions}. */
export interface PermissionContext {
  /** Working directory the export's relative local paths resolve against. */
  readonly cwd: string;
  /** Environment lookup, to resolve `url_env` / `password_env` when no connection is given. */
  readonly env: (name: string) => string | undefined;
  /** The resolved source connection; resolved from the config when omitted. */
  readonly connection?: ConnectionInfo;
  /** `--param` values: a `${NAME}` they fill needs no environment access. */
  readonly params?: Readonly<Record<string, string>>;
}

/**
 * The reason given to rivet's own code folders in the read needs. They are rivet's, not the
 * plan's: the operator's `--allow-read` of a sandboxed run is not asked to cover them.
 */
export const CODE_REASON = "rivet's code (workers load it)";

/** State database file name next to the config (see `state/sqlite.ts`). */
const STATE_DB_FILE = ".rivet_state.db";
/**
 * Fault-injection hooks (`_util/test_hook.ts`); reading them unset costs nothing. Exact names, not
 * a `RIVET_TEST_*` pattern, so a chunk worker granted these names stays within its parent's grant.
 */
export const TEST_HOOK_ENV = [
  "RIVET_TEST_BLOCK_AT",
  "RIVET_TEST_BLOCK_MS",
  "RIVET_TEST_CRASH_AT",
  "RIVET_TEST_HOSTNAME",
  "RIVET_TEST_LEASE_MS",
  "RIVET_TEST_SANDBOX_PROBE",
];
// Same shape as config/substitute.ts: anything up to the closing brace on the same line.
const placeholder = /\$\{([^}\n]*)\}/g;

/**
 * The permissions one export needs to run on its own (in a child process or a worker).
 *
 * Reads the config file and the export's `query_file` (for their `${NAME}` placeholders) and
 * resolves real paths, so the caller needs the access the export itself will get.
 *
 * @param config The loaded config.
 * @param spec The export.
 * @param ctx Working directory, environment, and optionally the resolved connection and params.
 * @returns Sorted, de-duplicated lists.
 * @throws {ConfigError} When the connection cannot be resolved (e.g. `url_env` unset).
 *
 * @example
 * ```ts ignore
 * import { exportPermissions, toDenoFlags } from "./permissions.ts";
 * const perms = await exportPermissions(config, config.exports[0], {
 *   cwd: Deno.cwd(),
 *   env: (n) => Deno.env.get(n),
 * });
 * console.log(toDenoFlags(perms)); // ["--allow-net=db:5432", "--allow-read=…", …]
 * ```
 */
export async function exportPermissions(
  config: ConfigSpec,
  spec: ExportSpec,
  ctx: PermissionContext,
): Promise<ExportPermissions> {
  return needsToPermissions(await exportNeeds(config, spec, ctx));
}

/** What one export may touch, each entry with the reason it is needed (for `rivet permissions`). */
export interface ExportNeeds {
  /** Entry → why (`source host:port`, `output folder`, …). */
  readonly net: ReadonlyMap<string, string>;
  readonly read: ReadonlyMap<string, string>;
  readonly write: ReadonlyMap<string, string>;
  /** Variable names; the fault-injection hooks are marked optional by {@linkcode TEST_HOOK_ENV}. */
  readonly env: ReadonlyMap<string, string>;
  /** Every variable is read (the Azure SDK, SQL Server's driver). */
  readonly allEnv: boolean;
  /** `--allow-sys` names. */
  readonly sys: readonly string[];
}

/**
 * The permissions of {@linkcode exportPermissions}, each with its reason: the one computation
 * behind the children's flags, the export workers' permissions and `rivet permissions`.
 *
 * @param config The loaded config.
 * @param spec The export.
 * @param ctx Working directory, environment, and optionally the resolved connection and params.
 * @returns Entry → reason maps.
 * @throws {ConfigError} When the connection cannot be resolved (e.g. `url_env` unset).
 */
export async function exportNeeds(
  config: ConfigSpec,
  spec: ExportSpec,
  ctx: PermissionContext,
): Promise<ExportNeeds> {
  const connection = ctx.connection ?? await resolveConnection(config.source, {
    configDir: config.dir,
    env: ctx.env,
    exportName: spec.name,
  });
  const net = new Map<string, string>();
  const read = new Map<string, string>();
  const write = new Map<string, string>();
  const env = new Map<string, string>(
    TEST_HOOK_ENV.map((n) => [n, "fault-injection hook (tests)"]),
  );
  if (connection.host.startsWith("/")) {
    // A Unix socket folder (PostgreSQL's `host=/run/postgresql`): connecting needs read and write.
    await addWithRealPath(read, connection.host, "source Unix socket folder");
    await addWithRealPath(write, connection.host, "source Unix socket folder");
  } else if (config.source.kind === "mssql" && connection.params.instance !== undefined) {
    // A SQL Server named instance listens on a port SQL Server Browser (UDP 1434) hands out at
    // connect time: only the host can be named.
    net.set(hostOnly(connection.host), "source (SQL Server named instance: any port)");
  } else {
    net.set(hostPort(connection.host, connection.port), "source");
  }

  const d = spec.destination;
  for (const host of storeHosts(d)) net.set(host, `${d.kind} destination`);
  const cloud = d.kind === "s3" || d.kind === "gcs" || d.kind === "azure";
  if (cloud) {
    for (
      const name of [
        d.accessKeyEnv,
        d.secretKeyEnv,
        d.sessionTokenEnv,
        d.accountKeyEnv,
        d.sasTokenEnv,
      ]
    ) {
      if (name !== undefined) env.set(name, `${d.kind} credentials (destination)`);
    }
    if (d.kind !== "azure") {
      for (const name of CLOUD_ENV[d.kind]) env.set(name, `read by the ${d.kind} client`);
    }
    if (d.credentialsFile !== undefined) {
      await addWithRealPath(read, resolve(config.dir, d.credentialsFile), "credentials_file");
    }
    for (const [path, why] of defaultChainFiles(d, ctx)) await addWithRealPath(read, path, why);
  }

  await addWithRealPath(read, config.dir, "config folder (config, query files, state database)");
  const c = config.source.connection;
  if (c.form === "url_file") await addWithRealPath(read, resolve(config.dir, c.path), "url_file");
  if (c.form === "url_env") env.set(c.env, "url_env (source URL)");
  if (c.form === "structured" && c.passwordEnv !== undefined) {
    env.set(c.passwordEnv, "password_env (source password)");
  }
  const caFile = config.source.tls?.caFile;
  if (caFile !== undefined) {
    // Made absolute against the config folder when the config was built.
    await addWithRealPath(read, resolve(config.dir, caFile), "TLS ca_file");
  }

  const stateVariable = stateUrlVariable(config);
  const stateUrl = readVariable(ctx, stateVariable);
  const sharedState = stateUrl !== undefined && stateUrl.trim() !== "";
  if (sharedState) {
    // The PostgreSQL state backend: every process opens the store itself, so the workers and
    // children need its host and the variable, and write no state file.
    const db = parseStateUrl(stateUrl, stateVariable);
    net.set(hostPort(db.host, db.port), `state database (${stateVariable})`);
    env.set(stateVariable, "state database URL");
    if (db.tls?.caFile !== undefined) {
      await addWithRealPath(read, resolve(config.dir, db.tls.caFile), "state database sslrootcert");
    }
  } else {
    const stateDb = resolve(config.dir, STATE_DB_FILE);
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      write.set(stateDb + suffix, "state database");
    }
  }
  write.set(resolve(config.dir, ".rivet"), "run reports (.rivet/)");

  const root = localRoot(spec, ctx.cwd);
  if (root !== undefined) {
    const why = `output folder of export '${spec.name}'`;
    await addWithRealPath(read, root, why);
    await addWithRealPath(write, root, why);
  }
  const checkpoint = spec.mode === "cdc" ? spec.cdc?.checkpoint : undefined;
  if (checkpoint !== undefined) {
    // Saved through a temporary file renamed over it: the whole folder, not just the file.
    const folder = dirname(resolve(config.dir, checkpoint));
    const why = `cdc checkpoint folder of export '${spec.name}'`;
    await addWithRealPath(read, folder, why);
    await addWithRealPath(write, folder, why);
  }
  if (spec.format.kind === "parquet") {
    const wasm = parquetWasmPath();
    if (wasm !== undefined) {
      await addWithRealPath(read, wasm, "parquet-wasm module (Parquet writer)");
    }
  }
  // A worker loads its modules under the process's read permission (the main thread's static
  // graph is not checked): the chunk workers and the export worker need rivet's code and npm
  // packages readable.
  for (const folder of codeFolders()) read.set(folder, CODE_REASON);

  const params = ctx.params ?? {};
  const texts: [string, string][] = [[await readOptional(config.path), "${NAME} in the config"]];
  if (spec.query.kind === "query_file") {
    texts.push([await readOptional(resolve(config.dir, spec.query.path)), "${NAME} in query_file"]);
  }
  for (const [text, why] of texts) {
    for (const name of placeholderNames(text)) {
      if (!Object.hasOwn(params, name) && !env.has(name)) env.set(name, why);
    }
  }

  const mssql = config.source.kind === "mssql";
  return {
    net,
    read,
    write,
    env,
    // The Azure SDK and tedious (SQL Server) both enumerate the environment at import.
    allEnv: d.kind === "azure" || mssql,
    // A shared chunk ledger records the host name of each claim.
    sys: cloud ? CLOUD_SYS : mssql || sharedState ? HOSTNAME_SYS : [],
  };
}

/**
 * The files a cloud destination's default credential chain reads when the config names no key:
 * S3's shared credentials and config files (`aws_profile` or the default chain; the web identity
 * token of a Kubernetes service account), GCS's application-default credentials (the
 * `GOOGLE_APPLICATION_CREDENTIALS` file, or gcloud's folder). Paths come from the variables the
 * SDKs read, else the home folder; none when neither is known.
 */
function defaultChainFiles(d: DestinationSpec, ctx: PermissionContext): [string, string][] {
  const get = (name: string) => {
    const value = readVariable(ctx, name);
    return value === undefined || value === "" ? undefined : value;
  };
  const home = get("HOME") ?? get("USERPROFILE");
  const files: [string, string][] = [];
  if (d.kind === "s3" && d.accessKeyEnv === undefined) {
    const why = d.awsProfile === undefined
      ? "default AWS credential chain"
      : `aws_profile '${d.awsProfile}'`;
    const credentials = get("AWS_SHARED_CREDENTIALS_FILE") ??
      (home && `${home}/.aws/credentials`);
    const awsConfig = get("AWS_CONFIG_FILE") ?? (home && `${home}/.aws/config`);
    for (const path of [credentials, awsConfig]) if (path) files.push([path, why]);
    const token = get("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (token) files.push([token, "default AWS credential chain (web identity token)"]);
  }
  if (d.kind === "gcs" && d.credentialsFile === undefined) {
    const adc = get("GOOGLE_APPLICATION_CREDENTIALS");
    const gcloud = get("CLOUDSDK_CONFIG") ?? (get("APPDATA") && `${get("APPDATA")}/gcloud`) ??
      (home && `${home}/.config/gcloud`);
    if (adc) files.push([adc, "GOOGLE_APPLICATION_CREDENTIALS"]);
    if (gcloud) files.push([gcloud, "gcloud application-default login"]);
  }
  return files.map(([path, why]) => [isAbsolute(path) ? path : resolve(ctx.cwd, path), why]);
}

/**
 * What a whole run of `specs` needs: the union of each export's {@linkcode exportNeeds} (the main
 * thread must hold everything its workers get), without the optional fault-injection hooks, plus
 * what the run's notifications need (the main thread sends them).
 *
 * @param config The loaded config.
 * @param specs The selected exports.
 * @param ctx As for {@linkcode exportNeeds}.
 * @returns Entry → reason maps (the first export's reason for an entry several need).
 */
export async function planNeeds(
  config: ConfigSpec,
  specs: readonly ExportSpec[],
  ctx: PermissionContext,
): Promise<ExportNeeds> {
  const net = new Map<string, string>();
  const read = new Map<string, string>();
  const write = new Map<string, string>();
  const env = new Map<string, string>();
  const sys = new Set<string>();
  let allEnv = false;
  for (const spec of specs) {
    const one = await exportNeeds(config, spec, ctx);
    for (const [into, from] of [[net, one.net], [read, one.read], [write, one.write]] as const) {
      for (const [entry, why] of from) if (!into.has(entry)) into.set(entry, why);
    }
    for (const [name, why] of one.env) {
      if (!TEST_HOOK_ENV.includes(name) && !env.has(name)) env.set(name, why);
    }
    for (const kind of one.sys) sys.add(kind);
    allEnv ||= one.allEnv;
  }
  await addNotificationNeeds(config, ctx, { net, read, env });
  return {
    net,
    read: withoutCovered(read),
    write: withoutCovered(write),
    env,
    allEnv,
    sys: [...sys].sort(),
  };
}

/**
 * What the run's notifications need, sent by the main thread after the exports: the variables
 * and file that hold the receivers' URLs (and the signing key), and each receiver's `host:port`
 * when its URL can be read now. Only the host is kept; a URL's path may be a secret.
 */
async function addNotificationNeeds(
  config: ConfigSpec,
  ctx: PermissionContext,
  into: { net: Map<string, string>; read: Map<string, string>; env: Map<string, string> },
): Promise<void> {
  const { slack, webhook } = config.notifications ?? {};
  const receiver = (url: string | undefined, why: string) => {
    const host = url === undefined ? undefined : urlHostPort(url.trim());
    if (host !== undefined && !into.net.has(host)) into.net.set(host, why);
  };
  if (slack) {
    const why = "notifications: Slack webhook";
    if (slack.webhookUrlEnv !== undefined) into.env.set(slack.webhookUrlEnv, why);
    receiver(slack.webhookUrl?.secret ?? readVariable(ctx, slack.webhookUrlEnv), why);
  }
  if (webhook) {
    const why = "notifications: webhook";
    if (webhook.urlEnv !== undefined) {
      into.env.set(webhook.urlEnv, why);
      receiver(readVariable(ctx, webhook.urlEnv), why);
    }
    if (webhook.secretEnv !== undefined) into.env.set(webhook.secretEnv, `${why} signing key`);
    if (webhook.urlFile !== undefined) {
      await addWithRealPath(into.read, webhook.urlFile, `${why} url_file`);
      try {
        receiver(await readInputText(webhook.urlFile, { maxBytes: INPUT_LIMITS.secret }), why);
      } catch {
        // The run reports an unreadable file as a notification warning.
      }
    }
  }
}

function readVariable(ctx: PermissionContext, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  try {
    return ctx.env(name);
  } catch {
    return undefined;
  }
}

/** The `host:port` of an http(s) URL, or undefined when it is not one. */
function urlHostPort(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return hostPort(
      url.hostname,
      url.port !== "" ? Number(url.port) : url.protocol === "http:" ? 80 : 443,
    );
  } catch {
    return undefined;
  }
}

/** The paths no other path of the map covers (a grant on a folder covers what is below it). */
function withoutCovered(paths: ReadonlyMap<string, string>): Map<string, string> {
  const covered = (path: string) =>
    [...paths.keys()].some((other) => other !== path && path.startsWith(`${other}/`));
  return new Map([...paths].filter(([path]) => !covered(path)));
}

/**
 * The sorted lists of {@linkcode ExportNeeds}, for {@linkcode toDenoFlags}.
 *
 * @param needs Entry → reason maps.
 * @returns The same entries without their reasons.
 */
export function needsToPermissions(needs: ExportNeeds): ExportPermissions {
  const keys = (m: ReadonlyMap<string, string>) => [...m.keys()].sort();
  return {
    net: keys(needs.net),
    read: keys(needs.read),
    write: keys(needs.write),
    env: keys(needs.env),
    ...(needs.allEnv ? { allEnv: true } : {}),
    ...(needs.sys.length > 0 ? { sys: needs.sys } : {}),
  };
}

/**
 * The environment a cloud destination reads: its `*_env` keys and its SDK's own variables, or
 * `true` (every variable) for Azure.
 *
 * @param d The export's destination.
 * @returns Variable names (`PREFIX*` allowed), `true`, or an empty list for local and stdout.
 */
export function cloudEnv(d: DestinationSpec): string[] | true {
  if (d.kind === "azure") return true;
  if (d.kind !== "s3" && d.kind !== "gcs") return [];
  const names = [d.accessKeyEnv, d.secretKeyEnv, d.sessionTokenEnv, d.accountKeyEnv, d.sasTokenEnv]
    .filter((n): n is string => n !== undefined);
  return [...names, ...CLOUD_ENV[d.kind]];
}

/**
 * The hosts a cloud destination talks to: its `endpoint`, else the store's public hosts and the
 * credential endpoints of the default chains.
 *
 * @param destination The export's destination.
 * @returns Hosts for `--allow-net`, empty for local and stdout.
 */
export function storeHosts(destination: DestinationSpec): string[] {
  // An endpoint is the only host, whatever the type (an invalid one fails in the config check).
  if (destination.endpoint !== undefined) return [endpointHostPort(destination.endpoint)];
  if (destination.kind === "local" || destination.kind === "stdout") return [];
  const metadata = ["169.254.169.254", "169.254.170.2"];
  if (destination.kind === "s3") {
    const region = destination.region ?? "us-east-1";
    return [
      `${destination.bucket}.s3.${region}.amazonaws.com`,
      `s3.${region}.amazonaws.com`,
      "s3.amazonaws.com",
      `sts.${region}.amazonaws.com`,
      "sts.amazonaws.com",
      ...metadata,
    ];
  }
  if (destination.kind === "gcs") {
    return [
      "storage.googleapis.com",
      "oauth2.googleapis.com",
      "sts.googleapis.com",
      "metadata.google.internal",
      ...metadata,
    ];
  }
  return [`${destination.accountName}.blob.core.windows.net`];
}

/**
 * The folder a local destination writes below: `path`, else `prefix`, else `.`, resolved against
 * `cwd` with `{export}`/`{table}` filled in and cut before the first `{date}` (the date is the
 * export's start, known only then). Undefined for non-local destinations.
 *
 * @param spec The export.
 * @param cwd Base directory of relative paths.
 * @returns An absolute folder, or undefined.
 *
 * @example
 * ```ts
 * import { localRoot } from "./permissions.ts";
 * const spec = { name: "orders", destination: { kind: "local", path: "out/{export}/{date}" } };
 * // deno-lint-ignore no-explicit-any
 * if (localRoot(spec as any, "/w") !== "/w/out/orders") throw new Error();
 * ```
 */
export function localRoot(spec: ExportSpec, cwd: string): string | undefined {
  if (spec.destination.kind !== "local") return undefined;
  const written = spec.destination.path ?? spec.destination.prefix ?? ".";
  // {date} is the only token that varies; a fixed date keeps the others from being cut.
  const filled = fillPlaceholders(written.replaceAll("{date}", "\0"), {
    exportName: spec.name,
    at: new Date(0),
  });
  const cut = filled.indexOf("\0");
  const head = cut < 0 ? filled : filled.slice(0, cut);
  // `out/orders_{date}` cuts mid-name: the folder that holds the varying name is `out`.
  const folder = cut < 0 || head === "" || head.endsWith("/") ? head : dirname(head);
  // The one rule of plan/resolve.ts for where a local destination starts.
  return destinationRoot({ ...spec.destination, path: folder === "" ? "." : folder }, cwd);
}

/**
 * `--allow-*` flags for `deno run`. An empty list gives no flag (that permission stays denied).
 *
 * @param p The permissions.
 * @returns Flags such as `--allow-net=127.0.0.1:5432`.
 * @throws {ConfigError} `permissions.comma_in_entry` when an entry holds a comma, which the
 *   flag syntax cannot express.
 *
 * @example
 * ```ts
 * import { toDenoFlags } from "./permissions.ts";
 * const flags = toDenoFlags({ net: ["db:5432"], read: [], write: ["/out"], env: ["A", "B"] });
 * if (flags.join(" ") !== "--allow-net=db:5432 --allow-write=/out --allow-env=A,B") {
 *   throw new Error(flags.join(" "));
 * }
 * ```
 */
export function toDenoFlags(p: ExportPermissions): string[] {
  const flags: string[] = [];
  for (const kind of ["net", "read", "write", "env"] as const) {
    const list = p[kind];
    if (list.length === 0) continue;
    for (const entry of list) {
      if (entry.includes(",")) {
        throw new ConfigError(
          `the ${kind} permission entry '${entry}' contains a comma, which Deno's --allow-${kind} ` +
            "flag cannot express",
          {
            code: "permissions.comma_in_entry",
            hint: "rename the folder or variable, or run without --parallel-export-processes",
          },
        );
      }
    }
    if (kind === "env" && p.allEnv) flags.push("--allow-env");
    else flags.push(`--allow-${kind}=${list.join(",")}`);
  }
  if (p.allEnv && p.env.length === 0) flags.push("--allow-env");
  if (p.sys && p.sys.length > 0) flags.push(`--allow-sys=${p.sys.join(",")}`);
  return flags;
}

/**
 * `deno.permissions` of a Web Worker that may do what the export needs and nothing else
 * (`run`, `ffi`, `sys` and `import` denied). The worker's parent must hold at least these
 * permissions, or `new Worker` throws `NotCapable`.
 *
 * @param p The permissions.
 * @returns Options for `new Worker(url, { type: "module", deno: { permissions } })`.
 *
 * @example
 * ```ts
 * import { toWorkerPermissions } from "./permissions.ts";
 * const w = toWorkerPermissions({ net: ["db:5432"], read: [], write: [], env: [] });
 * if (w.read !== false || w.run !== false || (w.net as string[])[0] !== "db:5432") throw new Error();
 * ```
 */
export function toWorkerPermissions(p: ExportPermissions): Deno.PermissionOptionsObject {
  const list = (entries: readonly string[]) => entries.length === 0 ? false : [...entries];
  return {
    net: list(p.net),
    read: list(p.read),
    write: list(p.write),
    env: p.allEnv ? true : list(p.env),
    run: false,
    ffi: false,
    sys: p.sys && p.sys.length > 0
      ? [...p.sys] as Exclude<Deno.PermissionOptionsObject["sys"], boolean | "inherit" | undefined>
      : false,
    import: false,
  };
}

/**
 * Whether an environment variable name is covered by a permission list (exact, or a `PREFIX*`
 * entry), as Deno matches `--allow-env`.
 *
 * @param name The variable.
 * @param allowed The list.
 * @returns True when the export may read it.
 */
export function envAllowed(name: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) =>
    entry.endsWith("*") ? name.startsWith(entry.slice(0, -1)) : name === entry
  );
}

/** `host:port`, bracketing IPv6 literals as Deno's net permission expects. */
function hostPort(host: string, port: number): string {
  return `${hostOnly(host)}:${port}`;
}

/** A host as `--allow-net` names it (IPv6 literals bracketed), any port. */
function hostOnly(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The `host:port` of a destination endpoint URL (default port by scheme). */
function endpointHostPort(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw new ConfigError(`destination.endpoint '${endpoint}' is not a URL`, {
      code: "config.invalid_url",
      cause,
      hint: "write it as http(s)://host[:port]",
    });
  }
  const port = url.port !== "" ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  return hostPort(url.hostname, port);
}

/** `${NAME}` names in a text, trimmed, empty ones dropped. */
function placeholderNames(text: string): string[] {
  return [...text.matchAll(placeholder)].map((m) => m[1]!.trim()).filter((n) => n !== "");
}

/** Adds a path and, when it differs and exists, its real path (Deno checks the path it is given). */
async function addWithRealPath(
  into: Map<string, string>,
  path: string,
  why: string,
): Promise<void> {
  const absolute = isAbsolute(path) ? path : resolve(path);
  if (!into.has(absolute)) into.set(absolute, why);
  try {
    const real = await Deno.realPath(absolute);
    if (!into.has(real)) into.set(real, why);
  } catch {
    // Not created yet (an output folder): the written path is the one the export will use.
  }
}

async function readOptional(path: string): Promise<string> {
  try {
    // The shared reader: a FIFO or device named as a query file must not block here.
    return await readInputText(path, { maxBytes: INPUT_LIMITS.queryFile });
  } catch {
    // The export itself reports a missing or unreadable file with its own message.
    return "";
  }
}

/**
 * rivet's `src/` folder and the folder its npm packages load from (`node_modules`, or the npm
 * cache of `DENO_DIR`), when they are local files (not in a compiled binary's embedded folder,
 * which a binary reads under its baked-in grants).
 */
function codeFolders(): string[] {
  const folders: string[] = [];
  const bundle = bundleRoot();
  if (bundle !== undefined) {
    // The release bundle: one folder holds every module and the wasm.
    return bundle.protocol === "file:" ? [fileURLToPath(bundle).replace(/\/$/, "")] : [];
  }
  const src = new URL("../", import.meta.url);
  if (src.protocol === "file:") folders.push(fileURLToPath(src).replace(/\/$/, ""));
  const wasm = parquetWasmPath();
  if (wasm !== undefined) {
    for (const marker of ["/node_modules/", "/registry.npmjs.org/"]) {
      const at = wasm.indexOf(marker);
      if (at >= 0) {
        folders.push(wasm.slice(0, at + marker.length - 1));
        break;
      }
    }
  }
  return folders;
}

/** Local path of parquet-wasm's `.wasm` (the file `formats/_wasm.ts` reads), if it is a file. */
function parquetWasmPath(): string | undefined {
  try {
    const bundle = bundleRoot();
    const url = bundle
      ? new URL(BUNDLED_PARQUET_WASM, bundle)
      : new URL(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"));
    return url.protocol === "file:" ? fileURLToPath(url) : undefined;
  } catch {
    return undefined;
  }
}
