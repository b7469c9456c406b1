/**
 * Operator grants: `--allow-net=…`, `--allow-read=…`, `--allow-write=…` and `--allow-env=…` given
 * to `rivet run` itself. A compiled binary has its permissions fixed when it is built and takes
 * Deno's flags as its own arguments, so these flags are how an operator narrows it: before
 * anything starts, the run's needs (`permissions.ts`, the same computation that narrows each
 * export's worker) must fit within what was granted, or the run is refused with the entries and
 * the flag to add. Every export then runs in a worker holding only its own needs, which the
 * check has just shown to be within the grants.
 *
 * The flags read as Deno's do: a list of hosts (`host` allows every port, `host:port` one), of
 * paths (a folder covers everything below it; relative paths start at the working directory),
 * or of variable names (`PREFIX*` covers a prefix); the flag without a value grants the whole
 * kind. A kind without a flag is not narrowed beyond what each export needs.
 *
 * Layer: engines.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import {
  CODE_REASON,
  type ExportNeeds,
  type ExportPermissions,
  needsToPermissions,
  TEST_HOOK_ENV,
  toDenoFlags,
} from "./permissions.ts";

/** The kinds an operator can narrow. */
export const GRANT_KINDS = ["net", "read", "write", "env"] as const;
/** One of {@linkcode GRANT_KINDS}. */
export type GrantKind = typeof GRANT_KINDS[number];

/** What the operator granted, per kind: a list, `"all"` (the flag without a value), or absent. */
export type OperatorGrants = { readonly [K in GrantKind]?: readonly string[] | "all" };

/** `--allow-*` values as the command line gives them (`true`: the flag without a value). */
export type GrantFlags = { readonly [K in GrantKind]?: string | true | undefined };

/** An entry the run needs and the grants do not cover. */
export interface MissingGrant {
  readonly kind: GrantKind;
  readonly entry: string;
  readonly why: string;
}

/**
 * Reads the `--allow-*` values of the command line.
 *
 * @param flags Each kind's value: a comma-separated list, or `true` for the bare flag.
 * @param cwd Base of relative paths.
 * @returns The grants; undefined when no flag was given (the run is not narrowed).
 * @throws {ConfigError} `cli.bad_grant` for an empty entry (`--allow-net=a,,b`, `--allow-read=`).
 *
 * @example
 * ```ts
 * import { parseGrants } from "./grants.ts";
 * const g = parseGrants({ net: "db:5432", write: "out" }, "/w");
 * if (g?.write?.[0] !== "/w/out" || g.read !== undefined) throw new Error();
 * ```
 */
export function parseGrants(flags: GrantFlags, cwd: string): OperatorGrants | undefined {
  const grants: { [K in GrantKind]?: readonly string[] | "all" } = {};
  let any = false;
  for (const kind of GRANT_KINDS) {
    const value = flags[kind];
    if (value === undefined) continue;
    any = true;
    if (value === true) {
      grants[kind] = "all";
      continue;
    }
    const entries = value.split(",").map((e) => e.trim());
    if (entries.some((e) => e === "")) {
      throw new ConfigError(`--allow-${kind}='${value}' holds an empty entry`, {
        code: "cli.bad_grant",
        hint: `list entries separated by commas (--allow-${kind}=${example(kind)}), or give ` +
          `--allow-${kind} without a value to grant the whole kind`,
      });
    }
    grants[kind] = kind === "read" || kind === "write"
      ? entries.map((p) => isAbsolute(p) ? resolve(p) : resolve(cwd, p))
      : entries;
  }
  return any ? grants : undefined;
}

function example(kind: GrantKind): string {
  return kind === "net"
    ? "db.internal:5432,s3.amazonaws.com"
    : kind === "env"
    ? "DATABASE_URL,AWS_*"
    : "/srv/exports,/etc/rivet";
}

/**
 * The entries of `needs` that `grants` do not cover. Paths are compared as written and as their
 * real paths (a granted symlink covers the folder it points to).
 *
 * @param needs What the run needs (`planNeeds`), with a reason per entry.
 * @param grants What the operator granted.
 * @returns The uncovered entries, in kind order; empty when the run fits.
 *
 * @example
 * ```ts
 * import { missingGrants } from "./grants.ts";
 * const needs = {
 *   net: new Map([["db:5432", "source"]]), read: new Map(), write: new Map([["/out/a", "output"]]),
 *   env: new Map(), allEnv: false, sys: [],
 * };
 * const missing = await missingGrants(needs, { net: ["db"], write: ["/elsewhere"] });
 * if (missing.length !== 1 || missing[0]?.entry !== "/out/a") throw new Error();
 * ```
 */
export async function missingGrants(
  needs: ExportNeeds,
  grants: OperatorGrants,
): Promise<MissingGrant[]> {
  const missing: MissingGrant[] = [];
  for (const kind of GRANT_KINDS) {
    const granted = grants[kind];
    if (granted === undefined || granted === "all") continue;
    const covers = kind === "net"
      ? (entry: string) => granted.some((g) => netCovers(g, entry))
      : kind === "env"
      ? (entry: string) => granted.some((g) => envCovers(g, entry))
      : await pathCoverage(granted);
    if (kind === "env" && needs.allEnv) {
      missing.push({
        kind,
        entry: "(every variable)",
        why: "the Azure or SQL Server client reads the whole environment",
      });
      continue;
    }
    const entries = needs[kind];
    for (const [entry, why] of entries) {
      if (kind === "env" && TEST_HOOK_ENV.includes(entry)) continue;
      // rivet's own modules (the bundle's folder, or the sources): not the plan's to grant.
      if (why === CODE_REASON) continue;
      if (!covers(entry)) missing.push({ kind, entry, why });
    }
  }
  return missing;
}

/**
 * Refuses a run whose needs exceed the operator's grants, naming every missing entry and the
 * flags that would grant them.
 *
 * @param needs What the run needs.
 * @param grants What the operator granted.
 * @throws {ConfigError} `run.not_granted` (exit 1) when anything is missing.
 */
export async function checkGrants(needs: ExportNeeds, grants: OperatorGrants): Promise<void> {
  const missing = await missingGrants(needs, grants);
  if (missing.length === 0) return;
  const lines = missing.map((m) => `--allow-${m.kind} lacks ${m.entry} (${m.why})`);
  const flags = GRANT_KINDS.filter((k) => missing.some((m) => m.kind === k)).map((kind) => {
    if (kind === "env" && needs.allEnv) return "--allow-env";
    const granted = grants[kind] as readonly string[];
    const added = missing.filter((m) => m.kind === kind).map((m) => m.entry);
    return `--allow-${kind}=${[...granted, ...added].join(",")}`;
  });
  throw new ConfigError(
    `the plan needs more than the --allow-* flags grant, so nothing was started: ${
      lines.join("; ")
    }`,
    {
      code: "run.not_granted",
      hint: `grant them (${flags.join(" ")}), or remove what needs them from the plan; ` +
        "`rivet permissions -c <config> --for binary` prints every flag the plan needs",
    },
  );
}

/**
 * An export's worker permissions under the operator's grants: its own needs (already checked to
 * fit), without the fault-injection variables when the operator narrowed the environment and
 * did not grant them.
 *
 * @param permissions The export's permissions.
 * @param grants The operator's grants, if any.
 * @returns The permissions its worker gets.
 */
export function withinGrants(
  permissions: ExportPermissions,
  grants: OperatorGrants | undefined,
): ExportPermissions {
  const env = grants?.env;
  if (env === undefined || env === "all") return permissions;
  return {
    ...permissions,
    env: permissions.env.filter((n) =>
      !TEST_HOOK_ENV.includes(n) || env.some((g) => envCovers(g, n))
    ),
  };
}

/**
 * The grants as command-line flags (for a process-mode child, which checks them again).
 *
 * @param grants The operator's grants.
 * @returns `--allow-net=…`-style arguments.
 */
export function grantArgs(grants: OperatorGrants | undefined): string[] {
  if (grants === undefined) return [];
  return GRANT_KINDS.flatMap((kind) => {
    const g = grants[kind];
    return g === undefined
      ? []
      : g === "all"
      ? [`--allow-${kind}`]
      : [`--allow-${kind}=${g.join(",")}`];
  });
}

/**
 * The `--allow-*` arguments of `rivet run` that grant exactly `needs` (what `rivet permissions
 * --for binary` prints). Same rendering and comma check as the children's `deno run` flags, less
 * `--allow-sys`, which the binary fixes when it is built.
 *
 * rivet's own code folders are left out (they are not the operator's to grant).
 *
 * @param needs What the run needs.
 * @returns Flags such as `--allow-net=db:5432`.
 */
export function runGrantFlags(needs: ExportNeeds): string[] {
  const read = new Map([...needs.read].filter(([, why]) => why !== CODE_REASON));
  return toDenoFlags({ ...needsToPermissions({ ...needs, read }), sys: [] });
}

interface HostPort {
  readonly host: string;
  readonly port: number | undefined;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal. */
function parseHostPort(entry: string): HostPort {
  const text = entry.trim().toLowerCase();
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    const host = text.slice(0, end + 1);
    const rest = text.slice(end + 1);
    return { host, port: rest.startsWith(":") ? Number(rest.slice(1)) : undefined };
  }
  const colons = text.split(":").length - 1;
  if (colons === 1) {
    const at = text.lastIndexOf(":");
    return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
  }
  // Several colons: an IPv6 literal without brackets (Deno's own flag rejects the port form).
  return { host: colons > 1 ? `[${text}]` : text, port: undefined };
}

/** Whether a granted host (any port) or `host:port` covers a needed one (any port needs any). */
function netCovers(granted: string, needed: string): boolean {
  const g = parseHostPort(granted);
  const n = parseHostPort(needed);
  return g.host === n.host && (g.port === undefined || g.port === n.port);
}

/** Whether a granted name or `PREFIX*` covers a needed name or `PREFIX*`. */
function envCovers(granted: string, needed: string): boolean {
  if (!granted.endsWith("*")) return granted === needed;
  return needed.startsWith(granted.slice(0, -1));
}

/** A test of whether a path lies at or below a granted path (as written or real). */
async function pathCoverage(granted: readonly string[]): Promise<(path: string) => boolean> {
  const roots = new Set(granted);
  for (const path of granted) {
    try {
      roots.add(await Deno.realPath(path));
    } catch {
      // Not there (yet): the path as written is the grant.
    }
  }
  const under = (path: string, root: string) =>
    path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);
  return (path) => [...roots].some((root) => under(path, root));
}
