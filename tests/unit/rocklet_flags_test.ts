import assert from "node:assert/strict";
import { parseRockletArgs, ROCKLET_FLAGS, rockletUsage } from "../../src/cli/rocklet_flags.ts";

Deno.test("parseRockletArgs() applies the table's defaults and checks", () => {
  assert.deepEqual(parseRockletArgs([]), {
    host: "0.0.0.0",
    port: 22555,
    maxOutputBytes: 10 * 1024 * 1024,
  });
  assert.deepEqual(
    parseRockletArgs(["--port=0", "--max-output-bytes", "1k", "--log-level", "warn"]),
    {
      host: "0.0.0.0",
      port: 0,
      maxOutputBytes: 1024,
      logLevel: "warn",
    },
  );
  assert.equal(parseRockletArgs(["-h"]), "help");
  assert.throws(() => parseRockletArgs(["--port", "x"]), /'--port <port>' argument 'x' is invalid/);
  assert.throws(() => parseRockletArgs(["--nope"]), /unknown option '--nope'/);
  assert.equal(rockletUsage().split("[").length - 1, ROCKLET_FLAGS.length);
});
