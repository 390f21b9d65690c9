/**
 * `rock model-service` as real processes: background start and stop with the state file,
 * anti-call-llm and watch-agent turns, --foreground, proxy flags over a config file, usage errors.
 * Runs the rock executable from source (main.ts).
 */
import assert from "node:assert/strict";
import { spawnServer } from "../helpers/process.ts";
import { fileURLToPath } from "node:url";
import { isProcessAlive } from "../../src/common/process_state.ts";
import { completion, startFakeUpstream } from "../helpers/llm_upstream.ts";

const ENTRY = fileURLToPath(new URL("../../main.ts", import.meta.url));

interface Dirs {
  data: string;
  state: string;
  env: Record<string, string>;
}

async function withDirs(fn: (dirs: Dirs) => Promise<void>): Promise<void> {
  const data = await Deno.makeTempDir({ prefix: "rock-ms-cli-data-" });
  const state = await Deno.makeTempDir({ prefix: "rock-ms-cli-state-" });
  try {
    await fn({
      data,
      state,
      env: { ROCK_MODEL_SERVICE_DATA_DIR: data, ROCK_MODEL_SERVICE_STATE_DIR: state },
    });
  } finally {
    // Whatever a failed test left serving is stopped by its pid from the state file.
    const left = await Deno.readTextFile(`${state}/model-service.json`).then(
      JSON.parse,
      () => null,
    );
    if (left && await isProcessAlive(left.pid, left.start_ticks)) Deno.kill(left.pid, "SIGKILL");
    await Deno.remove(data, { recursive: true });
    await Deno.remove(state, { recursive: true });
  }
}

async function rock(env: Record<string, string>, ...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ENTRY, "model-service", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Spawns a foreground server with `env` and waits for its `listening on <url>` line. */
function serveForeground(env: Record<string, string>, ...args: string[]) {
  return spawnServer([
    "run",
    "--allow-all",
    ENTRY,
    "model-service",
    "start",
    "--foreground",
    ...args,
  ], { env });
}

const AGENT = `
const [url, n] = Deno.args;
for (let i = 1; i <= Number(n); i++) {
  const r = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model: "p", messages: [{ role: "user", content: "q" + i }] }),
  });
  console.log((await r.json()).choices[0].message.content);
}
`;

Deno.test("rock model-service start serves in the background, refuses a second start; turns through anti-call-llm; watch-agent; stop", async () => {
  await withDirs(async ({ env, state }) => {
    const started = await rock(
      env,
      "start",
      "--type",
      "local",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    );
    assert.equal(started.code, 0, started.stderr);
    const [, pid, url] = /started \(pid (\d+), local\) on (http:\S+);/.exec(started.stdout) ?? [];
    assert.ok(url, started.stdout);
    assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: "healthy" });
    const saved = JSON.parse(await Deno.readTextFile(`${state}/model-service.json`));
    assert.equal(saved.pid, Number(pid));

    const second = await rock(env, "start", "--type", "local", "--port", "0");
    assert.equal(second.code, 1);
    assert.equal(second.stderr.trim().split("\n").length, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`already runs \\(pid ${pid}, local, on ${url}\\)`));

    const agent = new Deno.Command(Deno.execPath(), {
      args: ["eval", AGENT, url, "3"],
      stdout: "piped",
    }).spawn();
    const agentOut = new Response(agent.stdout).text();
    const watched = await rock(env, "watch-agent", "--pid", String(agent.pid));
    assert.equal(watched.code, 0, watched.stderr);

    let request = (await rock(env, "anti-call-llm", "--index", "0")).stdout;
    for (let index = 1; index <= 3; index++) {
      assert.equal(JSON.parse(request).messages[0].content, `q${index}`);
      const turn = await rock(
        env,
        "anti-call-llm",
        "--index",
        String(index),
        "--response",
        JSON.stringify(completion(`a${index}`)),
      );
      assert.equal(turn.code, 0, turn.stderr);
      assert.equal(turn.stdout.split("\n").length, 2, "prints one line and nothing else");
      request = turn.stdout;
    }
    assert.equal(request, "SESSION_END\n");
    assert.equal(await agentOut, "a1\na2\na3\n");
    await agent.status;

    const stopped = await rock(env, "stop");
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.trim(), `model service stopped (pid ${pid})`);
    assert.equal(await isProcessAlive(Number(pid)), false);
    await assert.rejects(Deno.stat(`${state}/model-service.json`));
    const again = await rock(env, "stop");
    assert.equal(again.code, 0);
    assert.equal(again.stdout.trim(), "model service is not running");
  });
});

Deno.test("rock model-service start --foreground --type proxy applies the config file and flags, stops on SIGTERM", async () => {
  await using upstream = startFakeUpstream((_, n) =>
    n === 1 ? new Response("unavailable", { status: 503 }) : Response.json(completion("via cli"))
  );
  await withDirs(async ({ data, env }) => {
    await Deno.writeTextFile(
      `${data}/proxy.yml`,
      `proxy_rules:\n  default: ${upstream.url}\nretry_delay: 0.01\nport: 1\n`,
    );
    const { url, child, stderr } = await serveForeground(
      env,
      "--type",
      "proxy",
      "--config-file",
      `${data}/proxy.yml`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--retryable-status-codes",
      "503",
    );
    try {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "any", messages: [] }),
      });
      assert.equal((await response.json()).choices[0].message.content, "via cli");
      assert.equal(upstream.calls.length, 2, "503 was retried as the flag asked");
      // Recorded after the answer is sent: wait for it.
      let traj;
      for (let i = 0; i < 200 && !traj; i++) {
        traj = await Deno.readTextFile(`${data}/LLMTraj.jsonl`).then(JSON.parse, () => undefined);
        if (!traj) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(traj.response.choices[0].message.content, "via cli");
    } finally {
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0, await stderr);
    }
  });
});

Deno.test("rock model-service rejects bad flags and files with one line and exit 2", async () => {
  await withDirs(async ({ data, env }) => {
    await Deno.writeTextFile(`${data}/bad.yml`, "retryable_status_codes: [429, 1000]\n");
    const cases: [string[], RegExp][] = [
      [["start", "--type", "remote"], /argument 'remote' is invalid/],
      [["start", "--retryable-status-codes", "429,abc"], /expected comma-separated HTTP status/],
      [["start", "--request-timeout", "soon"], /expected a positive number of seconds/],
      [["start", "--proxy-base-url", "ftp://x"], /expected an http or https URL/],
      [["start", "--config-file", `${data}/bad.yml`], /key "retryable_status_codes\.1"/],
      [["anti-call-llm", "--index", "-1"], /expected an integer of 0 or more/],
      [["anti-call-llm", "--index", "2"], /index 2 needs the response/],
      [["anti-call-llm", "--index", "0", "--response", "{}"], /index 0 takes no response/],
      [["anti-call-llm", "--index", "1", "--response", "{oops"], /not JSON/],
      [["watch-agent"], /required option '--pid <pid>'/],
    ];
    for (const [args, pattern] of cases) {
      const result = await rock(env, ...args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, pattern);
    }
    const help = await rock(env, "start", "--help");
    assert.match(help.stdout, /--type <type>[\s\S]*choices: "local", "proxy",\s+default: "local"/);
    assert.match(help.stdout, /--startup-timeout <seconds>[\s\S]*\(default: 30\)/);
  });
});

Deno.test("rock model-service watch-agent fails clearly when no service answers", async () => {
  await withDirs(async ({ env }) => {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    const result = await rock(env, "watch-agent", "--pid", "1", "--port", String(port));
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `Cannot watch agent 1: no model service answers at http://127\\.0\\.0\\.1:${port}/`,
      ),
    );
  });
});
