/** The SDK runs on Node: its bundle drives a real admin from a Node process. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startAdminServer } from "../helpers/admin_server.ts";
import { TEST_IMAGE } from "../helpers/docker.ts";
import { hostToolTest } from "../helpers/host_tools.ts";

hostToolTest(
  ["node"],
  "the SDK bundle runs on Node: start, arun both modes, files, directory upload, stop",
  async () => {
    await using admin = await startAdminServer("local");
    const dir = await Deno.makeTempDir({ prefix: "rock-sdk-node-" });
    try {
      const built = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--quiet",
          fileURLToPath(new URL("../../src/sdk/mod.ts", import.meta.url)),
          "--output",
          `${dir}/sdk.mjs`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
      assert.ok(
        !(await Deno.readTextFile(`${dir}/sdk.mjs`)).includes("Deno."),
        "the SDK bundle uses no Deno API",
      );
      await Deno.mkdir(`${dir}/tree/sub`, { recursive: true });
      await Deno.writeTextFile(`${dir}/tree/sub/a.txt`, "from node");
      await Deno.writeTextFile(
        `${dir}/main.mjs`,
        `import { Sandbox, BadRequestRockError } from "./sdk.mjs";
const sandbox = await new Sandbox({ baseUrl: process.argv[2], image: process.argv[3], memory: "1g", cpus: 1 }).start();
const out = {};
out.normal = await sandbox.arun("echo node-normal; exit 7");
out.nohup = await sandbox.arun("echo node-nohup", { mode: "nohup" });
await sandbox.upload(new Uint8Array([0, 1, 2, 255]), "/tmp/node/bytes.bin");
out.bytes = Array.from(await sandbox.download("/tmp/node/bytes.bin"));
await sandbox.uploadDir(process.argv[4], "/tmp/node/tree");
out.tree = await sandbox.readFile("/tmp/node/tree/sub/a.txt");
try { await sandbox.readFile("/no/such"); } catch (error) { out.typed = error instanceof BadRequestRockError; }
await sandbox.stop();
out.state = (await sandbox.getStatus()).state;
console.log(JSON.stringify(out));
`,
      );
      const run = await new Deno.Command("node", {
        args: [`${dir}/main.mjs`, admin.url, TEST_IMAGE, `${dir}/tree`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      const out = JSON.parse(new TextDecoder().decode(run.stdout));
      assert.deepEqual([out.normal.output, out.normal.exitCode], ["node-normal", 7]);
      assert.deepEqual([out.nohup.output, out.nohup.exitCode], ["node-nohup", 0]);
      assert.deepEqual(out.bytes, [0, 1, 2, 255]);
      assert.equal(out.tree, "from node");
      assert.equal(out.typed, true);
      assert.equal(out.state, "stopped");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
