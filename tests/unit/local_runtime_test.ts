import { LocalRuntime } from "../../src/runtime/local_runtime.ts";
import { contractBaseEnv, defineRuntimeContract } from "../contracts/runtime_contract.ts";

defineRuntimeContract("LocalRuntime", (options = {}) => {
  const runtime = new LocalRuntime({
    baseEnv: contractBaseEnv(),
    maxOutputBytes: options.maxOutputBytes,
  });
  return Promise.resolve({
    runtime,
    async [Symbol.asyncDispose]() {
      await runtime.close();
    },
  });
});
