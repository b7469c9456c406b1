import { LocalDestination } from "../../src/destinations/local.ts";
import { destinationContract } from "./contract.ts";

destinationContract("local (temp folder)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_contract_" });
  return {
    multiPartSize: 3 * 1024 * 1024,
    open: () => LocalDestination.open({ path: "out" }, { baseDir: dir }),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
});
