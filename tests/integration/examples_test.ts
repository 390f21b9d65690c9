/**
 * Every example runs against a real rocklet or admin and prints what its comments promise. The
 * admin examples run without arguments, finding the admin through $ROCK_BASE_URL.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startRockletServer } from "../helpers/rocklet_server.ts";
import { type AdminServer, startAdminServer } from "../helpers/admin_server.ts";
import {
  isQuickstart,
  QUICKSTART_OUTPUT,
  readmeSnippets,
  runTsSnippet,
} from "../helpers/readme.ts";

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

/** Runs `examples/<name>` with no arguments and ROCK_BASE_URL naming `admin`. */
async function runExample(name: string, admin: AdminServer) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL(`../../examples/${name}`, import.meta.url))],
    env: { ROCK_BASE_URL: admin.url },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return stdout;
}

Deno.test("examples/sdk_basic.ts starts a sandbox and reports both arun modes", async () => {
  await using admin = await startAdminServer("local");
  const stdout = await runExample("sdk_basic.ts", admin);
  assert.match(stdout, /^sandbox \S+ is running$/m);
  assert.match(stdout, /^normal: hello from \/tmp \(exit 0\)$/m);
  assert.match(stdout, /^nohup: about to fail \(exit 7\)$/m);
  assert.match(stdout, /^phases: process_start=success$/m);
  assert.deepEqual(
    (await admin.manager.list({ state: ["running"] }, 1, 10)).total,
    0,
    "the example stopped it",
  );
});

Deno.test("examples/sdk_files.ts moves text, binary, a directory and a download", async () => {
  await using admin = await startAdminServer("local");
  const stdout = await runExample("sdk_files.ts", admin);
  assert.match(stdout, /^text: written by the SDK$/m);
  assert.match(stdout, /^binary: 65536 bytes, identical: true$/m);
  assert.match(stdout, /^directory: \.\/README \.\/src\/main\.py$/m);
  assert.match(stdout, /^downloaded: 19 bytes$/m);
});

Deno.test("examples/sandbox_group.ts starts a group and runs in every member", async () => {
  await using admin = await startAdminServer("local");
  const stdout = await runExample("sandbox_group.ts", admin);
  assert.match(stdout, /^started 3 of 3$/m);
  assert.match(stdout, /^ran in all: true$/m);
  assert.equal((await admin.manager.list({ state: ["running"] }, 1, 10)).total, 0);
});

Deno.test("the README's SDK quickstart runs as pasted", async () => {
  await using admin = await startAdminServer("local");
  const quickstart = (await readmeSnippets()).find(isQuickstart);
  assert.ok(quickstart, "the README has a ts block under SDK quickstart");
  assert.equal(await runTsSnippet(quickstart, { ROCK_BASE_URL: admin.url }), QUICKSTART_OUTPUT);
});
