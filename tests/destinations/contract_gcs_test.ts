import { GcsDestination } from "../../src/destinations/gcs.ts";
import { startGcsServer } from "../_helpers/gcs_server.ts";
import { destinationContract } from "./contract.ts";

destinationContract("GCS (in-repo server)", async () => {
  const gcs = await startGcsServer({ buckets: ["contract"] });
  const warnings: { message: string; code: string | undefined }[] = [];
  let n = 0;
  return {
    // Chunks of 256 KiB: several intermediate chunks and a short last one.
    multiPartSize: 1024 * 1024 + 100,
    warnings,
    injectTransient: () => gcs.inject({ status: 503 }),
    open: () =>
      GcsDestination.open({
        kind: "gcs",
        bucket: "contract",
        prefix: `c${++n}/`,
        endpoint: gcs.url,
        allowAnonymous: true,
      }, {
        env: () => undefined,
        chunkSize: 256 * 1024,
        retry: { baseDelayMs: 5, maxDelayMs: 50 },
        warn: (message, code) => warnings.push({ message, code }),
      }),
    [Symbol.asyncDispose]: () => gcs[Symbol.asyncDispose](),
  };
});
