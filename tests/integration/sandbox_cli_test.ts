/**
 * `rock sandbox ...` as a real process against a real admin on the local backend: start, ls,
 * status, exec, shell, cp, logs, stop, the CLI config file, one-line errors for bad input, and
 * why a stopped or failed sandbox no longer runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type AdminServer,
  get,
  silentRockletLauncher,
  startAdminServer,
  waitStoredState,
} from "../helpers/admin_server.ts";
import { sha256Hex } from "../helpers/bytes.ts";
import { testSandboxId } from "../helpers/docker.ts";
import { MAIN } from "../helpers/process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rock sandbox <args>` with no config file unless `env` names one. */
async function rock(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> | undefined } = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "sandbox", ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: {
      ROCK_CLI_DEFAULT_CONFIG_PATH: "/nonexistent/rock-config.ini",
      ROCK_BASE_URL: "",
      ...options.env,
    },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** `rock sandbox --base-url <admin> <args>`, asserting exit code 0. */
async function ok(server: AdminServer, ...args: string[]): Promise<string> {
  const result = await rock(["--base-url", server.url, ...args]);
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

/** Asserts a failure printed exactly one `error: ...` line and no stack trace. */
function assertOneLine(result: Run, label: string): void {
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `${label}: ${result.stderr}`);
  assert.match(lines[0] ?? "", /^error: /, label);
  assert.doesNotMatch(result.stderr, /^\s+at /m, label);
}

/** Runs `body` with an admin and one started sandbox; stops every sandbox it started. */
async function withSandbox(
  body: (server: AdminServer, id: string, started: string[]) => Promise<void>,
): Promise<void> {
  await using server = await startAdminServer("local");
  const started: string[] = [];
  try {
    const id = (await ok(server, "start", "--image", "rock-test/cli")).trim();
    started.push(id);
    await body(server, id, started);
  } finally {
    for (const id of started) await server.manager.stop(id).catch(() => {});
  }
}

/** The sandbox's private work dir (local backend), removed when it stops. */
function workDir(server: AdminServer, id: string): string {
  return join(server.dataDir, "sandboxes", id, "work");
}

Deno.test("rock sandbox start prints the id; status, ls and stop see it through its lifecycle", async () => {
  await withSandbox(async (server, id, started) => {
    assert.match(id, /^[0-9a-f]{32}$/);
    const status = JSON.parse(await ok(server, "status", id, "--json"));
    assert.equal(status.sandbox_id, id);
    assert.equal(status.state, "running");
    assert.equal(status.is_alive, true);
    assert.match(await ok(server, "status", id), /state\s+running \(alive\)/);

    const named = (await ok(server, "start", "--sandbox-id", "cli-named", "--user", "bob")).trim();
    started.push(named);
    assert.equal(named, "cli-named");
    // Global options also work after the subcommand.
    const all = JSON.parse(
      (await rock(["ls", "--base-url", server.url, "--json"])).stdout,
    ) as { sandbox_id: string }[];
    assert.deepEqual(all.map((s) => s.sandbox_id).sort(), [id, named].sort());
    const bobs = JSON.parse(await ok(server, "ls", "--user", "bob", "--json"));
    assert.deepEqual(bobs.map((s: { sandbox_id: string }) => s.sandbox_id), [named]);
    const table = await ok(server, "ls", "--state", "running");
    assert.match(table.split("\n")[0] ?? "", /^ID\s+STATE\s+FAILURE\s+IMAGE\s+USER\s+CREATED$/);
    assert.match(table, new RegExp(`${named}\\s+running\\s+python:3\\.11\\s+bob`));
    assert.match(table, new RegExp(`${id}\\s+running\\s+rock-test/cli\\s+default`));

    assert.deepEqual((await ok(server, "stop", id, named)).trim().split("\n"), [id, named]);
    assert.equal(JSON.parse(await ok(server, "status", id, "--json")).state, "stopped");
    assert.deepEqual(JSON.parse(await ok(server, "ls", "--state", "running", "--json")), []);
  });
});

Deno.test("rock sandbox exec passes stdout, stderr and the exit code; --session keeps state", async () => {
  await withSandbox(async (server, id) => {
    const zero = await rock(["--base-url", server.url, "exec", id, "--", "echo", "hello world"]);
    assert.deepEqual(zero, { code: 0, stdout: "hello world\n", stderr: "" });
    const seven = await rock([
      "--base-url",
      server.url,
      "exec",
      id,
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; exit 7",
    ]);
    assert.deepEqual(seven, { code: 7, stdout: "out\n", stderr: "err\n" });
    const env = await ok(
      server,
      "exec",
      id,
      "--env",
      "GREETING=hi there",
      "--",
      "sh",
      "-c",
      'echo "$GREETING"',
    );
    assert.equal(env, "hi there\n");

    await ok(server, "exec", id, "--session", "s1", "--", "cd", "/tmp", "&&", "export", "V=9");
    assert.equal(
      await ok(server, "exec", id, "--session", "s1", "--", "echo $(pwd) $V"),
      "/tmp 9\n",
    );
    const failed = await rock([
      "--base-url",
      server.url,
      "exec",
      id,
      "--session",
      "s1",
      "--",
      "exit 7",
    ]);
    assert.equal(failed.code, 7, failed.stderr);
  });
});

Deno.test("rock sandbox shell runs piped lines in one session and ends with exit N or EOF", async () => {
  await withSandbox(async (server, id) => {
    const script = [
      "cd /tmp",
      "pwd",
      "X=5",
      "if [ $X -eq 5 ]; then",
      "  echo five",
      "fi",
      "cat <<EOF",
      "here $X",
      "EOF",
      "echo x=$X",
      "exit 3",
      "echo never",
    ].join("\n");
    const result = await rock(["--base-url", server.url, "shell", id], { stdin: `${script}\n` });
    assert.equal(result.code, 3, result.stderr);
    assert.equal(result.stdout, "/tmp\nfive\nhere 5\nx=5\n");
    assert.equal(result.stderr, "");
    // At EOF the exit code is the last command's, as in bash.
    const eof = await rock(["--base-url", server.url, "shell", id], { stdin: "echo a\nfalse" });
    assert.deepEqual([eof.code, eof.stdout], [1, "a\n"]);
    const bare = await rock(["--base-url", server.url, "shell", id], { stdin: "false\nexit\n" });
    assert.equal(bare.code, 1, bare.stderr);
    // An open quote waits for its end; a line bash rejects is reported as typed and skipped.
    const rejected = await rock(["--base-url", server.url, "shell", id], {
      stdin: "echo 'a\nb'\necho )\necho next\n",
    });
    assert.deepEqual([rejected.code, rejected.stdout], [0, "a\nb\nnext\n"]);
    assert.match(rejected.stderr, /syntax error near unexpected token [`']\)'.*echo \)/);
    assert.doesNotMatch(rejected.stderr, /\{ :;/);
  });
});

Deno.test("rock sandbox cp copies a binary file and a directory of 100 files both ways", async () => {
  await withSandbox(async (server, id) => {
    const local = await Deno.makeTempDir({ prefix: "rock-cli-cp-" });
    try {
      const remote = workDir(server, id);
      const bytes = new Uint8Array(5 * 1024 * 1024 + 17);
      for (let at = 0; at < bytes.length; at += 65536) {
        crypto.getRandomValues(bytes.subarray(at, at + 65536));
      }
      await Deno.writeFile(join(local, "blob.bin"), bytes);
      await ok(server, "cp", join(local, "blob.bin"), `${id}:${remote}/in/blob.bin`);
      await ok(server, "cp", `${id}:${remote}/in/blob.bin`, join(local, "back.bin"));
      assert.equal(
        await sha256Hex(await Deno.readFile(join(local, "back.bin"))),
        await sha256Hex(bytes),
      );

      const tree = join(local, "tree");
      const expected = new Map<string, string>();
      for (let i = 0; i < 100; i++) {
        const path = `d${i % 7}/sub${i % 3}/f${i}.bin`;
        const content = crypto.getRandomValues(new Uint8Array(100 + i * 37));
        await Deno.mkdir(join(tree, `d${i % 7}/sub${i % 3}`), { recursive: true });
        await Deno.writeFile(join(tree, path), content);
        expected.set(path, await sha256Hex(content));
      }
      await ok(server, "cp", tree, `${id}:${remote}/tree`);
      await ok(server, "cp", `${id}:${remote}/tree`, join(local, "tree-back"));
      const found = new Map<string, string>();
      const walk = async (dir: string, prefix: string) => {
        for await (const entry of Deno.readDir(dir)) {
          const path = prefix ? `${prefix}/${entry.name}` : entry.name;
          if (entry.isDirectory) await walk(join(dir, entry.name), path);
          else found.set(path, await sha256Hex(await Deno.readFile(join(dir, entry.name))));
        }
      };
      await walk(join(local, "tree-back"), "");
      assert.equal(found.size, 100);
      assert.deepEqual(found, expected);
    } finally {
      await Deno.remove(local, { recursive: true });
    }
  });
});

Deno.test("rock sandbox logs prints the rocklet's log; GET get_logs serves it on the local backend", async () => {
  await withSandbox(async (server, id) => {
    assert.match(await ok(server, "logs", id), /rocklet listening on http:/);
    assert.equal((await ok(server, "logs", id, "--tail", "1")).trim().split("\n").length, 1);

    const logs = await get(server.api, `/get_logs?sandbox_id=${id}&tail=5`);
    assert.equal(logs.status, "Success", JSON.stringify(logs));
    assert.match(logs.result.logs, /rocklet listening on/);
    const missing = await get(server.api, "/get_logs?sandbox_id=nope");
    assert.equal(missing.status, "Failed");
    assert.match(missing.error ?? "", /Sandbox "nope" not found/);
    const bad = await get(server.api, `/get_logs?sandbox_id=${id}&tail=zero`);
    assert.equal(bad.status, "Failed");
    assert.equal(bad.result.code, 4000);
  });
});

Deno.test("rock sandbox reads base_url and extra headers from the CLI config file", async () => {
  await using server = await startAdminServer("local");
  const dir = await Deno.makeTempDir({ prefix: "rock-cli-config-" });
  const started: string[] = [];
  try {
    const config = join(dir, "config.ini");
    await Deno.writeTextFile(
      config,
      [
        "# rock CLI",
        "[rock]",
        `base_url = ${server.url}`,
        "",
        "; headers for every request",
        "[rock.extra_headers]",
        "X-User-Id = from-config",
        "X-Namespace = ns-config",
      ].join("\n"),
    );
    const env = { ROCK_CLI_DEFAULT_CONFIG_PATH: config };
    const start = await rock(["--extra-header", "X-Namespace=ns-flag", "start"], { env });
    assert.equal(start.code, 0, start.stderr);
    const id = start.stdout.trim();
    started.push(id);
    const status = JSON.parse((await rock(["status", id, "--json"], { env })).stdout);
    assert.equal(status.user_id, "from-config");
    assert.equal(status.namespace, "ns-flag");
    // $ROCK_BASE_URL beats the file; --base-url beats both.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dead = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
    closed.close();
    const viaEnv = await rock(["ls"], { env: { ...env, ROCK_BASE_URL: dead } });
    assert.equal(viaEnv.code, 1);
    assert.match(viaEnv.stderr, /Cannot reach the admin at http:\/\/127\.0\.0\.1/);
    const viaFlag = await rock(["--base-url", server.url, "ls", "--json"], {
      env: { ...env, ROCK_BASE_URL: dead },
    });
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
  } finally {
    for (const id of started) await server.manager.stop(id).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rock sandbox rejects bad input with one line: exit 2 for usage, 1 for failures", async () => {
  await withSandbox(async (server, id) => {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dead = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
    closed.close();
    const badConfig = await Deno.makeTempFile({ suffix: ".ini" });
    await Deno.writeTextFile(badConfig, "[rock]\nno separator here\n");
    try {
      const cases: [string[], number, RegExp, Record<string, string>?][] = [
        [["start", "--cpus", "abc"], 2, /--cpus.*expected a number above zero/],
        [["start", "--memory", "lots"], 2, /--memory.*expected a size/],
        [["start", "--pull", "sometimes"], 2, /Allowed choices are never, always, missing/],
        [["start", "--env", "A=1"], 2, /ROCK's start request carries no environment/],
        [["--extra-header", "nokey", "ls"], 2, /expected NAME=VALUE/],
        [["ls", "--state", "sleeping"], 2, /Allowed choices/],
        [["cp", "a", "b"], 2, /neither names a sandbox/],
        [["cp", `${id}:/a`, `${id}:/b`], 2, /both name a sandbox/],
        [["exec", id, "--session", "s", "--env", "A=1", "--", "ls"], 2, /--env with --session/],
        [["ls"], 2, /config file .*:2: expected "key = value"/, {
          ROCK_CLI_DEFAULT_CONFIG_PATH: badConfig,
        }],
        [["status", "nope"], 2, /^error: No sandbox id starts with "nope"$/m],
        [["exec", "nope", "--", "ls"], 2, /No sandbox id starts with "nope"/],
        [["exec", id, "--", "no-such-command"], 1, /no such executable/],
        [["stop", "nope"], 2, /No sandbox id starts with "nope"/],
        [["logs", "nope"], 2, /No sandbox id starts with "nope"/],
        [["rm", "nope"], 2, /No sandbox id starts with "nope"/],
        [["restart", "nope"], 2, /No sandbox id starts with "nope"/],
        [["prune", "--older-than", "5x"], 2, /expected a duration such as 90s/],
        [["prune"], 2, /required option '--older-than <duration>' not specified/],
        [["ls", "--all", "--state", "failed"], 2, /Cannot use --all with --state/],
        [["rm", id], 1, /Cannot delete sandbox "[0-9a-f]+": .*it is running; stop it first/],
        [["cp", `${id}:/no/such/file`, "/tmp/x"], 1, /no such file or directory/],
        [["--base-url", dead, "status", id], 1, /Cannot reach the admin/],
      ];
      for (const [args, code, pattern, env] of cases) {
        const withUrl = args[0] === "--base-url" ? args : ["--base-url", server.url, ...args];
        const result = await rock(withUrl, { env });
        const label = args.join(" ");
        assert.equal(result.code, code, `${label}: ${result.stderr}`);
        assertOneLine(result, label);
        assert.match(result.stderr, pattern, label);
      }
    } finally {
      await Deno.remove(badConfig);
    }
  });
});

/** A wire time in the test admin's zone (Asia/Shanghai). */
const TIME = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00`;

Deno.test("rock sandbox exec, status and logs of an expired sandbox say it expired and when, in one line", async () => {
  let skew = 0;
  await using server = await startAdminServer("local", {
    now: () => Date.now() + skew,
    sweepIntervalMs: 20,
  });
  const id = testSandboxId("cli-expired");
  try {
    await ok(server, "start", "--sandbox-id", id, "--auto-clear", "1");
    skew = 2 * 60_000; // past --auto-clear 1: the sweeper stops it
    await waitStoredState(server, id, "stopped");
    const stopped = `Sandbox "${id}" is stopped: expired: no keep-alive for 1 minute ` +
      `\\(stopped at ${TIME}\\)`;
    for (const args of [["exec", id, "--", "true"], ["exec", id, "--session", "s", "--", "true"]]) {
      const result = await rock(["--base-url", server.url, ...args]);
      assert.equal(result.code, 1, result.stderr);
      assertOneLine(result, args.join(" "));
      assert.match(result.stderr, new RegExp(`^error: ${stopped}\\n$`));
    }
    const status = await ok(server, "status", id);
    assert.match(
      status,
      new RegExp(
        `^state\\s+stopped: expired: no keep-alive for 1 minute \\(stopped at ${TIME}\\)$`,
        "m",
      ),
    );
    assert.match(status, /^failure kind\s+expired$/m);
    const logs = await rock(["--base-url", server.url, "logs", id]);
    assert.equal(logs.code, 1);
    assertOneLine(logs, "logs");
    assert.match(
      logs.stderr,
      new RegExp(`^error: ${stopped}; the local backend removed its logs with it\\n$`),
    );
  } finally {
    await server.manager.stop(id).catch(() => {});
  }
});

Deno.test("rock sandbox status of a failed start names the failure reason and when", async () => {
  await using server = await startAdminServer("local", {
    launcher: await silentRockletLauncher(),
    startupTimeoutMs: 300,
  });
  const id = testSandboxId("cli-failed");
  const start = await rock(["--base-url", server.url, "start", "--sandbox-id", id]);
  assert.equal(start.code, 1);
  assertOneLine(start, "start");
  const status = await ok(server, "status", id);
  assert.match(
    status,
    new RegExp(
      `^state\\s+failed: start failed: Cannot start sandbox "${id}": the rocklet did not ` +
        `answer within 0\\.3 s.* \\(stopped at ${TIME}\\)$`,
      "m",
    ),
  );
  assert.doesNotMatch(status, /^failure {2,}/m, "the reason is on the state line only");
  assert.match(status, /^failure kind\s+timeout$/m);
});

Deno.test("rock sandbox logs of a stopped sandbox prints the logs still there, then why it stopped", async () => {
  await withSandbox(async (server, id) => {
    await ok(server, "stop", id);
    // What a backend that keeps logs after a stop would still hold.
    const dir = join(server.dataDir, "sandboxes", id);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "rocklet.log"), "rocklet listening\nlast words\n");
    const result = await rock(["--base-url", server.url, "logs", id, "--tail", "1"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "last words\n");
    assert.match(
      result.stderr,
      new RegExp(`^Sandbox "${id}" is stopped: stop requested \\(stopped at ${TIME}\\)\\n$`),
    );
  });
});

Deno.test("rock sandbox start --timeout leases the sandbox, status shows when it expires and why, extend sets it again", async () => {
  const paths: string[] = [];
  const logger = {
    debug: (_: string, fields?: Record<string, unknown>) => void paths.push(String(fields?.path)),
    info: (_: string, fields?: Record<string, unknown>) => void paths.push(String(fields?.path)),
    warn: () => {},
    error: () => {},
  };
  await using server = await startAdminServer("local", { logger });
  const id = (await ok(server, "start", "--timeout", "10m")).trim();
  try {
    // The start waited on the event stream, not by polling get_status.
    assert.ok(paths.some((p) => p.endsWith("/events")), paths.join(" "));
    assert.ok(!paths.some((p) => p.endsWith("/get_status")), paths.join(" "));
    const status = JSON.parse(await ok(server, "status", id, "--json"));
    assert.equal(status.timeout_seconds, 600);
    assert.ok(status.expire_in_seconds > 590 && status.expire_in_seconds <= 600);
    assert.match(
      await ok(server, "status", id),
      /expires\s+\S+ \(in (9m5\ds|10m)\): timeout of 600 s \(set with timeout_seconds/,
    );
    const extended = await ok(server, "extend", id, "1h30m");
    assert.match(extended, new RegExp(`^${id} expires at \\S+ \\(in (1h29m5\\ds|1h30m)\\)\\n$`));
    const after = JSON.parse(await ok(server, "status", id, "--json"));
    assert.equal(after.timeout_seconds, 5400);
    assert.ok(Date.parse(after.expire_time) - Date.parse(status.expire_time) > 4700_000);

    const bad = await rock(["--base-url", server.url, "extend", id, "soon"]);
    assert.equal(bad.code, 2);
    assertOneLine(bad, "extend soon");
    assert.match(bad.stderr, /expected a duration such as 90s, 30m or 1h30m, got "soon"/);
    const unknown = await rock(["--base-url", server.url, "extend", "rock-test-none", "5m"]);
    assert.equal(unknown.code, 2);
    assertOneLine(unknown, "extend unknown");
    assert.match(unknown.stderr, /No sandbox id starts with "rock-test-none"/);
  } finally {
    await server.manager.stop(id).catch(() => {});
  }
});

Deno.test("rock sandbox ls shows live sandboxes (-a all), ids go by unique prefix, and restart, rm and prune work the history", async () => {
  let skew = 0;
  await using server = await startAdminServer("local", { now: () => Date.now() + skew });
  const prefix = testSandboxId("cli-life");
  const [alpha, beta] = [`${prefix}-alpha`, `${prefix}-beta`];
  const run = (...args: string[]) => rock(["--base-url", server.url, ...args]);
  try {
    await ok(server, "start", "--sandbox-id", alpha);
    await ok(server, "start", "--sandbox-id", beta);
    // A unique prefix names the sandbox; an ambiguous or unknown one is bad input.
    assert.equal(
      JSON.parse(await ok(server, "status", `${prefix}-al`, "--json")).sandbox_id,
      alpha,
    );
    const ambiguous = await run("status", `${prefix}-`);
    assert.equal(ambiguous.code, 2, ambiguous.stderr);
    assertOneLine(ambiguous, "ambiguous");
    assert.match(ambiguous.stderr, new RegExp(`"${prefix}-" is ambiguous: it starts .*${beta}`));
    assert.match(ambiguous.stderr, new RegExp(alpha));
    assert.equal((await ok(server, "stop", `${prefix}-be`)).trim(), beta);

    // ls: live ones; -a adds the history with why each ended.
    const ids = (items: { sandbox_id: string }[]) => items.map((s) => s.sandbox_id).sort();
    assert.deepEqual(ids(JSON.parse(await ok(server, "ls", "--json"))), [alpha]);
    const all = JSON.parse(await ok(server, "ls", "-a", "--json"));
    assert.deepEqual(ids(all), [alpha, beta].sort());
    assert.equal(
      all.find((s: { sandbox_id: string }) => s.sandbox_id === beta).failure_kind,
      "user",
    );
    assert.match(
      await ok(server, "ls", "-a"),
      new RegExp(`^${beta}\\s+stopped\\s+user\\s+python`, "m"),
    );

    // restart: the same id runs again; rm: a running one is refused, a stopped one goes.
    assert.equal((await ok(server, "restart", `${prefix}-be`)).trim(), beta);
    assert.equal(await ok(server, "exec", `${prefix}-be`, "--", "echo", "back"), "back\n");
    const running = await run("rm", alpha);
    assert.equal(running.code, 1);
    assertOneLine(running, "rm running");
    assert.match(running.stderr, /it is running; stop it first/);
    assert.equal((await ok(server, "rm", "--force", `${prefix}-be`)).trim(), beta);
    assert.deepEqual(ids(JSON.parse(await ok(server, "ls", "-a", "--json"))), [alpha]);
    // status still answers a deleted sandbox by its whole id.
    const deleted = JSON.parse(await ok(server, "status", beta, "--json"));
    assert.equal(deleted.state, "deleted");
    assert.ok(deleted.delete_time);

    // prune: only what ended longer ago than the duration.
    skew = -2 * 3_600_000;
    await ok(server, "stop", alpha);
    skew = 0;
    assert.equal(await ok(server, "prune", "--older-than", "3h"), "");
    assert.equal((await ok(server, "prune", "--older-than", "1h")).trim(), alpha);
    assert.deepEqual(JSON.parse(await ok(server, "ls", "-a", "--json")), []);
  } finally {
    for (const id of [alpha, beta]) await server.manager.stop(id).catch(() => {});
  }
});
