/** The `rock` executable: help, version, usage errors, and `rock rocklet` as a real process. */
import assert from "node:assert/strict";
import { commandLines, MAIN, runRock, spawnRocklet } from "../helpers/process.ts";

const rock = (...args: string[]) => runRock(args);

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
  assert.ok(
    !(await commandLines()).some((line) => line.includes("sleep 60.125")),
    "background job left behind",
  );
});

Deno.test("rock admin start rejects bad flags and bad config files with one line and exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.yml`, "admin:\n  colour: blue\n");
    for (
      const [args, pattern] of [
        [["admin", "start", "--port", "http"], /expected a port number/],
        [["admin", "start", "--backend", "cloud"], /argument 'cloud' is invalid/],
        [["admin", "start", "--config", `${dir}/missing.yml`], /Cannot read config file/],
        [["admin", "start", "--config", `${dir}/bad.yml`], /key "admin\.colour"/],
        [["admin", "start", "--env", "nowhere"], /rock-nowhere\.yml/],
      ] as const
    ) {
      const result = await rock(...args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, pattern);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rock admin start --daemon serves until rock admin stop for the same data dir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-daemon-test-" });
  try {
    const started = await rock(
      "admin",
      "start",
      "--daemon",
      "--backend",
      "local",
      "--port",
      "0",
      "--data-dir",
      dir,
    );
    assert.equal(started.code, 0, started.stderr);
    const url = /on (http:\S+);/.exec(started.stdout)?.[1];
    assert.ok(url, started.stdout);
    assert.deepEqual(await (await fetch(`${url}/`)).json(), { message: "hello, ROCK!" });
    const twice = await rock(
      "admin",
      "start",
      "--daemon",
      "--backend",
      "local",
      "--port",
      "0",
      "--data-dir",
      dir,
    );
    const pid = /pid (\d+)/.exec(started.stdout)![1];
    const port = new URL(url).port;
    const owner = new RegExp(
      `another admin \\(pid ${pid}\\) serves it on http://127\\.0\\.0\\.1:${port}`,
    );
    assert.equal(twice.code, 1);
    assert.equal(twice.stderr.trim().split("\n").length, 1, twice.stderr);
    assert.match(twice.stderr, owner);
    // A foreground start on the same data dir is refused too, and leaves the daemon's pid file.
    const pidFile = await Deno.readTextFile(`${dir}/admin.pid`);
    const foreground = await rock(
      "admin",
      "start",
      "--backend",
      "local",
      "--port",
      "0",
      "--data-dir",
      dir,
    );
    assert.equal(foreground.code, 1);
    assert.match(foreground.stderr, owner);
    assert.equal(await Deno.readTextFile(`${dir}/admin.pid`), pidFile);
    assert.deepEqual(await (await fetch(`${url}/`)).json(), { message: "hello, ROCK!" });
    const stopped = await rock("admin", "stop", "--data-dir", dir);
    assert.equal(stopped.code, 0, stopped.stderr);
    await assert.rejects(fetch(`${url}/`));
    const none = await rock("admin", "stop", "--data-dir", dir);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^error: No admin runs for/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the slim rocklet entry takes rock rocklet's flags and rejects bad ones with exit 2", async () => {
  const slim = MAIN.replace(/main\.ts$/, "src/cli/rocklet_main.ts");
  const run = async (...args: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", slim, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
    };
  };
  assert.match((await run("--version")).stdout.trim(), /^\d+\.\d+\.\d+$/);
  for (
    const [args, pattern] of [
      [["rocklet", "--bogus", "1"], /unknown option '--bogus'/],
      [["rocklet", "--port", "99999"], /expected a port number/],
      [["rocklet", "--max-output-bytes=lots"], /expected a size/],
      [["rocklet", "--port"], /argument missing/],
      [["admin"], /serves only `rocklet`/],
    ] as const
  ) {
    const result = await run(...args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, pattern);
  }
});
