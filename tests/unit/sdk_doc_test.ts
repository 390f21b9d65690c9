/** The SDK's public surface is documented: `deno doc --lint src/sdk/mod.ts` is clean. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

Deno.test("deno doc --lint src/sdk/mod.ts reports nothing", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", fileURLToPath(new URL("../../src/sdk/mod.ts", import.meta.url))],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, text.slice(0, 3000));
});
