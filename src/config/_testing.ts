/**
 * Test helpers for the config layer: write YAML into a fresh temp directory and load it.
 *
 * Layer: config (private, tests only).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec } from "../core/spec.ts";
import { loadConfig } from "./load.ts";
import type { LoadConfigOptions } from "./load.ts";

/** A minimal valid config; tests splice their keys into it. */
export const BASE_SOURCE = "source:\n  type: postgres\n  url_env: PG_URL\n";

/** One valid export list entry (name `orders`), indented for `exports:`. */
export const BASE_EXPORT =
  "  - name: orders\n    table: public.orders\n    format: parquet\n    destination: {type: local, path: ./out}\n";

/** Writes `files` (name → text) into a new temp dir and returns the dir. */
export async function tempDirWith(files: Readonly<Record<string, string>>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_config_test_" });
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
  return dir;
}

/** Writes `yaml` as `rivet.yaml` in a temp dir (plus extra files) and loads it. */
export async function loadYaml(
  yaml: string,
  options: LoadConfigOptions & { files?: Readonly<Record<string, string>> } = {},
): Promise<ConfigSpec> {
  const dir = await tempDirWith({ "rivet.yaml": yaml, ...options.files });
  try {
    return await loadConfig(join(dir, "rivet.yaml"), {
      env: options.env ?? (() => undefined),
      ...(options.params === undefined ? {} : { params: options.params }),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Loads `yaml` expecting a ConfigError; returns it (message and hint joined for matching). */
export async function loadError(
  yaml: string,
  options: LoadConfigOptions & { files?: Readonly<Record<string, string>> } = {},
): Promise<ConfigError & { text: string }> {
  try {
    await loadYaml(yaml, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.exitCode, 1);
    return Object.assign(error, { text: `${error.message}\n${error.hint ?? ""}` });
  }
  assert.fail("config loaded but an error was expected");
}

/** Expects `fn` to throw a ConfigError and returns it. */
export async function configErrorOf(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail("no error was thrown");
}
