/**
 * Destination factory: one `DestinationSpec` in, an open destination out.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { ConfigError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { LocalDestination } from "./local.ts";
import { StdoutDestination } from "./stdout.ts";

/** Options of {@linkcode openDestination}. */
export interface OpenDestinationOptions {
  /** Folder a relative local `path`/`prefix` is resolved against: the process CWD. */
  readonly baseDir: string;
}

/**
 * Opens the destination an export writes to.
 *
 * @param spec The validated `destination:` block.
 * @param options Where relative local paths start.
 * @returns The destination; dispose it when the export ends.
 * @throws {ConfigError} `config.not_supported` for `s3`, `gcs` and `azure` (a later release).
 *
 * @example
 * ```ts
 * import { openDestination } from "./open.ts";
 * await using dest = await openDestination({ kind: "stdout", allowAnonymous: false }, {
 *   baseDir: Deno.cwd(),
 * });
 * if (dest.capabilities.persistent) throw new Error("stdout keeps nothing");
 * ```
 */
export function openDestination(
  spec: DestinationSpec,
  options: OpenDestinationOptions,
): Promise<Destination> {
  switch (spec.kind) {
    case "local":
      return LocalDestination.open(spec, options);
    case "stdout":
      return Promise.resolve(new StdoutDestination());
    case "s3":
    case "gcs":
    case "azure":
      return Promise.reject(
        new ConfigError(
          `Destination type '${spec.kind}' is not supported in this release; use 'local' or ` +
            "'stdout'",
          { code: "config.not_supported" },
        ),
      );
  }
}
