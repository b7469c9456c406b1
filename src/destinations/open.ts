/**
 * Destination factory: one `DestinationSpec` in, an open destination out.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { LocalDestination } from "./local.ts";
import { StdoutDestination } from "./stdout.ts";
import type { DestinationWarn } from "./_store_errors.ts";

/** Options of {@linkcode openDestination}. */
export interface OpenDestinationOptions {
  /** Folder a relative local `path`/`prefix` is resolved against: the process CWD. */
  readonly baseDir: string;
  /** Environment lookup for credentials (`*_env` keys); the process environment by default. */
  readonly env?: (name: string) => string | undefined;
  /** Cancels the opening requests. */
  readonly signal?: AbortSignal;
  /**
   * Receives the warnings of the destination, with a code: `destination.retrying` for each
   * request an object store retries, `destination.staging_left`, else `destination.warning`
   * (e.g. a SAS token close to its expiry). Messages do not name the export. Default: stderr.
   */
  readonly warn?: DestinationWarn;
}

/**
 * Opens the destination an export writes to.
 *
 * @param spec The validated `destination:` block.
 * @param options Where relative local paths start.
 * @returns The destination; dispose it when the export ends.
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
      // Loaded on demand: the AWS SDK is large, and local runs never need it.
      return import("./s3.ts").then(({ S3Destination }) =>
        S3Destination.open(spec, {
          env: options.env ?? ((name) => Deno.env.get(name)),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.warn ? { warn: options.warn } : {}),
        })
      );
    case "gcs":
      return import("./gcs.ts").then(({ GcsDestination }) =>
        GcsDestination.open(spec, {
          env: options.env ?? ((name) => Deno.env.get(name)),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.warn ? { warn: options.warn } : {}),
        })
      );
    case "azure":
      return import("./azure.ts").then(({ AzureDestination }) =>
        AzureDestination.open(spec, {
          env: options.env ?? ((name) => Deno.env.get(name)),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.warn ? { warn: options.warn } : {}),
        })
      );
  }
}
