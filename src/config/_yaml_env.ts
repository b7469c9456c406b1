/**
 * npm:yaml's parser, run with the package's own debug switches hidden.
 *
 * The YAML package (its Node build, which Deno loads) reads `process.env.LOG_TOKENS` for every
 * token and `process.env.LOG_STREAM` for every node while it parses. Under a narrowed
 * `--allow-env` those reads throw `NotCapable`, so a config could not be parsed without granting
 * two variables rivet never uses; and where access is granted, a stray `LOG_TOKENS=1` in the
 * environment would print the token stream on stdout, in the middle of an `--events ndjson`
 * stream. While the parse runs, `process.env` is replaced by a view in which those two names are
 * unset and every other name reads through. Each call is synchronous, so no other code of this
 * thread ever sees the view (workers have their own `process`).
 *
 * Layer: config (private).
 *
 * @module
 */
import process from "node:process";

/** The variables npm:yaml reads as debug switches. */
const YAML_DEBUG_ENV = new Set<PropertyKey>(["LOG_TOKENS", "LOG_STREAM"]);

/**
 * Runs a synchronous function with the YAML package's debug variables hidden.
 *
 * @param parse The parse (must not await: the view is removed when it returns).
 * @returns What `parse` returned.
 */
export function withoutYamlDebugEnv<T>(parse: () => T): T {
  const real = process.env;
  // The target is a plain empty object, not the real env: a Proxy over Deno's env object would
  // read the hidden names anyway while checking the Proxy invariants (and fail without access).
  process.env = new Proxy(Object.create(null), {
    get: (_target, name) => YAML_DEBUG_ENV.has(name) ? undefined : Reflect.get(real, name),
    has: (_target, name) => !YAML_DEBUG_ENV.has(name) && Reflect.has(real, name),
    set: (_target, name, value) => Reflect.set(real, name, value),
  });
  try {
    return parse();
  } finally {
    process.env = real;
  }
}
