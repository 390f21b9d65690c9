import { RockletClient } from "../../src/sdk/rocklet_client.ts";
import { contractBaseEnv, defineRuntimeContract } from "../contracts/runtime_contract.ts";
import { startRockletServer } from "../helpers/rocklet_server.ts";

defineRuntimeContract("RockletClient over HTTP", (options = {}) => {
  const server = startRockletServer({
    baseEnv: contractBaseEnv(),
    maxOutputBytes: options.maxOutputBytes,
  });
  return Promise.resolve({
    runtime: new RockletClient(server.url),
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  });
});
