/** The `rock` executable: help, version, usage errors, and `rock rocklet` as a real process. */
import assert from "node:assert/strict";
import { MAIN, spawnRocklet } from "../helpers/process.ts";

async function rock(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("rock --version prints the version and rock --help lists the rocklet", async () => {
  const version = await rock("--version");
  assert.equal(version.code, 0);
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
  const help = await rock("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /rocklet/);
});

Deno.test("rock rocklet --help shows every option with its default", async () => {
  const help = await rock("rocklet", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--host <host>.*\(default: "0\.0\.0\.0"\)/);
  assert.match(help.stdout, /--port <port>.*\(default: 22555\)/);
  assert.match(help.stdout, /--max-output-bytes <size>[\s\S]*10m\)/);
});

Deno.test("rock exits 2 with one line for unknown options, bad values and unknown commands", async () => {
  for (
    const [args, pattern] of [
      [["rocklet", "--bogus"], /unknown option '--bogus'/],
      [["rocklet", "--port", "99999"], /expected a port number/],
      [["rocklet", "--port", "abc"], /expected a port number/],
      [["rocklet", "--max-output-bytes", "lots"], /expected a size/],
      [["no-such-command"], /unknown command/],
    ] as const
  ) {
    const result = await rock(...args);
    assert.equal(result.code, 2, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, pattern);
  }
});

Deno.test("rock rocklet serves on the given port and stops cleanly on SIGTERM", async () => {
  const { url, child, stderr } = await spawnRocklet();
  try {
    const created = await fetch(`${url}/create_session`, {
      method: "POST",
      body: '{"session":"cli"}',
    });
    assert.equal(created.status, 200, await created.text());
    const run = await fetch(`${url}/run_in_session`, {
      method: "POST",
      body: JSON.stringify({ session: "cli", command: "echo served-by-cli; sleep 60.125 &" }),
    });
    assert.equal((await run.json()).output, "served-by-cli");
  } finally {
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, await stderr);
  }
  const { stdout } = await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" })
    .output();
  assert.ok(
    !new TextDecoder().decode(stdout).includes("sleep 60.125"),
    "background job left behind",
  );
});
