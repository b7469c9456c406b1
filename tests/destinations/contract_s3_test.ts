import { S3Destination } from "../../src/destinations/s3.ts";
import { startS3rver } from "../_helpers/s3rver.ts";
import { destinationContract } from "./contract.ts";

destinationContract("S3 (s3rver)", async () => {
  const s3 = await startS3rver();
  let n = 0;
  const env: Record<string, string> = { K: s3.accessKeyId, S: s3.secretAccessKey };
  return {
    // Two 8 MiB parts and a short last one.
    multiPartSize: 17 * 1024 * 1024,
    open: () =>
      S3Destination.open({
        kind: "s3",
        bucket: s3.bucket,
        prefix: `c${++n}/`,
        endpoint: s3.endpoint,
        accessKeyEnv: "K",
        secretKeyEnv: "S",
        allowAnonymous: false,
      }, { env: (name) => env[name], warn: () => {} }),
    [Symbol.asyncDispose]: () => s3[Symbol.asyncDispose](),
  };
});
