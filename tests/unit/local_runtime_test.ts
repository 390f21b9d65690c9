import assert from "node:assert/strict";
import { LocalRuntime } from "../../src/runtime/local_runtime.ts";
import { contractBaseEnv, defineRuntimeContract } from "../contracts/runtime_contract.ts";
import { validating } from "../helpers/validating_runtime.ts";

defineRuntimeContract("LocalRuntime", (options = {}) => {
  const runtime = new LocalRuntime({
    baseEnv: contractBaseEnv(),
    maxOutputBytes: options.maxOutputBytes,
  });
  return Promise.resolve({
    runtime: validating(runtime),
    async [Symbol.asyncDispose]() {
      await runtime.close();
    },
  });
});

Deno.test("LocalRuntime.prepare() readies sessions ahead; sessions run after it and close() cleans up", async () => {
  const runtime = new LocalRuntime();
  try {
    await runtime.prepare();
    await runtime.prepare();
    const client = validating(runtime);
    await client.createSession({ session: "s" });
    const observation = await client.runInSession({ session: "s", command: "echo ready" });
    assert.equal(observation.output, "ready");
  } finally {
    await runtime.close();
  }
});
