import { startAzurite } from "../_helpers/azurite.ts";
import { fixture } from "./azure_fixture.ts";
import { destinationContract } from "./contract.ts";

destinationContract("Azure (Azurite)", async () => {
  const azurite = await startAzurite();
  const f = fixture(azurite);
  return {
    // Two 8 MiB blocks and a short last one.
    multiPartSize: 17 * 1024 * 1024,
    async open() {
      const container = await f.container();
      return await f.open(container.containerName);
    },
    [Symbol.asyncDispose]: () => azurite[Symbol.asyncDispose](),
  };
});
