/**
 * Deno lint plugin enforcing the layer rules of `.github/ARCHITECTURE.md`. Registered in
 * `deno.json` under `lint.plugins`, so a violation fails `deno lint` and `deno task ok`.
 *
 * Rules (plugin `rivet-layers`):
 * - `core-isolated`: `src/core/` imports nothing in `src/` but `core/`;
 * - `family-isolation`: `sources/`, `formats/`, `destinations/` and `state/` import only core/ and
 *   `_util/` besides themselves (so never each other, nor config/ or plan/);
 * - `pipeline-imports`: `pipeline/` imports only `core/`, `plan/`, `_util/` and itself;
 * - `no-cli-imports`: only `cli.ts`, `src/cli/` itself and tests import `src/cli/`;
 * - `no-foreign-private`: a `_private.ts` file is imported only from its own folder (or below),
 *   and by a `mod.ts` whose folder contains it;
 * - `arrow-single-file`: only `src/core/arrow.ts` imports the Arrow package;
 * - `deno-at-edges`: only the edge modules listed in `DENO_EDGES` use the `Deno` runtime object.
 *
 * Every static import, re-export (`export … from`) and dynamic `import("literal")` is checked,
 * type-only ones included: a type import still couples the layers. Test files (`*_test.ts`,
 * `tests/`, and the `scripts/` tooling) are exempt from the layer-direction rules (a pipeline test may drive a real format
 * or destination rather than a mock) but not from the private-file and Arrow rules.
 *
 * @module
 */

/** Folders whose modules must stay independent of one another. */
const FAMILIES = new Set(["sources", "formats", "destinations", "state"]);
/** What `pipeline/` may import. */
const PIPELINE_ALLOWED = new Set(["pipeline", "core", "plan", "_util"]);

/** Where a module sits, as the rules see it. */
interface Place {
  /** Path with `/` separators. */
  readonly path: string;
  /** Path below `src/` (`destinations/local.ts`), or undefined outside `src/`. */
  readonly inSrc: string | undefined;
  /** First folder below `src/` (`destinations`), or undefined. */
  readonly layer: string | undefined;
}

function place(path: string): Place {
  const normalized = path.replaceAll("\\", "/");
  const at = normalized.lastIndexOf("/src/");
  const inSrc = at >= 0
    ? normalized.slice(at + 5)
    : normalized.startsWith("src/")
    ? normalized.slice(4)
    : undefined;
  const slash = inSrc?.indexOf("/") ?? -1;
  return {
    path: normalized,
    inSrc,
    layer: inSrc !== undefined && slash > 0 ? inSrc.slice(0, slash) : undefined,
  };
}

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash >= 0 ? path.slice(0, slash) : "";
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Resolves `./x` and `../x` against the importing file, `/`-separated; other specifiers unchanged. */
function resolveSpecifier(importer: string, specifier: string): string | undefined {
  if (specifier.startsWith("file://")) return decodeURIComponent(new URL(specifier).pathname);
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const parts = dirOf(importer).split("/");
  for (const segment of specifier.split("/")) {
    if (segment === "." || segment === "") continue;
    if (segment === "..") parts.pop();
    else parts.push(segment);
  }
  return parts.join("/");
}

/** Tests and repository tooling (`scripts/`): never shipped inside a layer. */
function isTestFile(p: Place): boolean {
  return /_test\.[cm]?[jt]sx?$/.test(p.path) || /(^|\/)(tests|scripts)\//.test(p.path);
}

function isArrowSpecifier(specifier: string): boolean {
  return /^(npm:\/?)?apache-arrow(@[^/]*)?(\/|$)/.test(specifier);
}

/** One import edge. */
interface Edge {
  readonly from: Place;
  readonly specifier: string;
  /** The imported file, when the specifier is a relative path. */
  readonly to: Place | undefined;
}

type Check = (edge: Edge) => string | undefined;

/** Applies a layer-direction check to production modules only. */
function productionOnly(check: Check): Check {
  return (edge) => (isTestFile(edge.from) ? undefined : check(edge));
}

const checks: Record<string, Check> = {
  "core-isolated": productionOnly(({ from, to }) =>
    from.layer === "core" && to?.inSrc !== undefined && to.layer !== "core"
      ? `core/ imports nothing from src/ but core/, yet this imports src/${to.inSrc}; move the ` +
        "shared type into core/"
      : undefined
  ),
  "family-isolation": productionOnly(({ from, to }) =>
    from.layer !== undefined && FAMILIES.has(from.layer) && to?.inSrc !== undefined &&
      to.layer !== from.layer && to.layer !== "core" && to.layer !== "_util"
      ? `${from.layer}/ imports only core/ and _util/, not src/${to.inSrc}; share through core/ ` +
        "or _util/, or compose them in pipeline/engines"
      : undefined
  ),
  "pipeline-imports": productionOnly(({ from, to }) =>
    from.layer === "pipeline" && to?.inSrc !== undefined &&
      (to.layer === undefined || !PIPELINE_ALLOWED.has(to.layer))
      ? `pipeline/ imports only core/, plan/ and _util/, not src/${to.inSrc}; inject the ` +
        "collaborator through PipelineDeps"
      : undefined
  ),
  "no-cli-imports": productionOnly(({ from, to }) =>
    to?.layer === "cli" && from.layer !== "cli" && !/(^|\/)cli\.ts$/.test(from.path)
      ? `Only cli.ts and src/cli/ import src/cli/ (src/${to.inSrc}); move the shared code to ` +
        "a lower layer"
      : undefined
  ),
  "no-foreign-private": ({ from, to }) => {
    if (to === undefined || !baseOf(to.path).startsWith("_")) return undefined;
    const privateDir = dirOf(to.path);
    const fromDir = dirOf(from.path);
    if (fromDir === privateDir || fromDir.startsWith(`${privateDir}/`)) return undefined;
    if (baseOf(from.path) === "mod.ts" && privateDir.startsWith(`${fromDir}/`)) return undefined;
    return `${baseOf(to.path)} is private to ${
      privateDir.slice(privateDir.lastIndexOf("/") + 1)
    }/; ` +
      "import it through that folder's public module instead";
  },
  "arrow-single-file": ({ from, specifier }) =>
    isArrowSpecifier(specifier) && from.inSrc !== "core/arrow.ts"
      ? "Only src/core/arrow.ts imports apache-arrow; import Arrow from src/core/arrow.ts (add " +
        "the export there if it is missing)"
      : undefined,
};

type SourceNode = Deno.lint.StringLiteral;

function ruleFor(name: string, check: Check): Deno.lint.Rule {
  return {
    create(ctx) {
      const from = place(ctx.filename);
      const visit = (source: Deno.lint.Node | null | undefined) => {
        if (source?.type !== "Literal" || typeof source.value !== "string") return;
        const specifier = source.value;
        const resolved = resolveSpecifier(from.path, specifier);
        const message = check({
          from,
          specifier,
          to: resolved === undefined ? undefined : place(resolved),
        });
        if (message !== undefined) {
          ctx.report({ node: source as SourceNode, message, hint: `rule ${name}` });
        }
      };
      return {
        ImportDeclaration: (node) => visit(node.source),
        ExportAllDeclaration: (node) => visit(node.source),
        ExportNamedDeclaration: (node) => visit(node.source),
        ImportExpression: (node) => visit(node.source),
      };
    },
  };
}

/**
 * Modules allowed to call the Deno runtime (Deno APIs stay at the edges, so the pure layers run and
 * test anywhere): the CLI, the engines, the state store, destinations, the config file/env access,
 * a source's socket and error-mapping files, the wasm loader and the crash hooks. Type positions
 * (`Deno.Conn`) are not calls and are not checked.
 */
const DENO_EDGES = [
  /^(cli|engines|state|destinations)\//,
  /^config\/_(fs|testing)\.ts$/,
  /^sources\/[^/]+\/(connect|_errors)\.ts$/,
  /^formats\/_(wasm|measure)\.ts$/,
  /^_util\/(test_hook|input_file|atomic_file)\.ts$/,
];

/** Flags `Deno.*` value uses outside {@linkcode DENO_EDGES}. */
const denoAtEdges: Deno.lint.Rule = {
  create(ctx) {
    const from = place(ctx.filename);
    if (from.inSrc === undefined || isTestFile(from)) return {};
    if (DENO_EDGES.some((edge) => edge.test(from.inSrc!))) return {};
    return {
      MemberExpression(node) {
        if (node.object.type === "Identifier" && node.object.name === "Deno") {
          ctx.report({
            node,
            message: `src/${from.inSrc} calls the Deno runtime; only the edge modules may ` +
              "(cli/, engines/, state/, destinations/, config/_fs.ts, sources/*/connect.ts, …): " +
              "inject the capability instead",
            hint: "rule deno-at-edges",
          });
        }
      },
    };
  },
};

/** The plugin: one rule per layer constraint. */
const plugin: Deno.lint.Plugin = {
  name: "rivet-layers",
  rules: {
    ...Object.fromEntries(
      Object.entries(checks).map(([name, check]) => [name, ruleFor(name, check)]),
    ),
    "deno-at-edges": denoAtEdges,
  },
};

export default plugin;
