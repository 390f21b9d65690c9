/** Every example runs against a real rocklet and prints what its comments promise. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startRockletServer } from "../helpers/rocklet_server.ts";

Deno.test("examples/rocklet_session.ts runs a session, a file round trip and a command", async () => {
  await using server = startRockletServer();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      fileURLToPath(new URL("../../examples/rocklet_session.ts", import.meta.url)),
      server.url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.match(stdout, /^session: hello from \/tmp \(exit 0\)$/m);
  assert.match(stdout, /^file: written through the rocklet$/m);
  assert.match(stdout, /^execute: removed '\/tmp\/rock-example-[0-9a-f-]+\.txt' \(exit 0\)$/m);
});
