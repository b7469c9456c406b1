import { AzureDestination } from "../../src/destinations/azure.ts";
import { startAzurite } from "../_helpers/azurite.ts";
import { destinationContract } from "./contract.ts";
import { BlobServiceClient } from "@azure/storage-blob";

destinationContract("Azure (Azurite)", async () => {
  const azurite = await startAzurite();
  const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  let n = 0;
  return {
    // Two 8 MiB blocks and a short last one.
    multiPartSize: 17 * 1024 * 1024,
    async open() {
      const container = `contract${++n}`;
      await service.getContainerClient(container).create();
      return await AzureDestination.open({
        kind: "azure",
        bucket: container,
        accountName: azurite.accountName,
        endpoint: azurite.endpoint(),
        accountKeyEnv: "AZ_KEY",
        allowAnonymous: false,
      }, { env: (name) => name === "AZ_KEY" ? azurite.accountKey : undefined, warn: () => {} });
    },
    [Symbol.asyncDispose]: () => azurite[Symbol.asyncDispose](),
  };
});
