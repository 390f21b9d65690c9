/**
 * `rock agent run` as a real process against a real admin on the local backend: a bad config
 * exits 2 with one line naming the key and no sandbox started; a stand-in agent's output and exit
 * code come back and its sandbox is stopped (or kept with --keep).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { startAdminServer } from "../helpers/admin_server.ts";
import { STAND_IN_AGENT_DIR, SYSTEM_RUNTIME } from "../contracts/agent_contract.ts";
import { TEST_IMAGE } from "../helpers/docker.ts";
import { hostToolTest } from "../helpers/host_tools.ts";
import { MAIN } from "../helpers/process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function rockAgent(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "agent", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: {
      ROCK_CLI_DEFAULT_CONFIG_PATH: "/nonexistent/rock-config.ini",
      ROCK_BASE_URL: "",
      ...env,
    },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

async function writeConfig(dir: string, name: string, config: unknown): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, stringify(config));
  return path;
}

Deno.test("rock agent run: a bad config exits 2 with one line naming the key, and no sandbox starts", async () => {
  await using admin = await startAdminServer("local");
  const dir = await Deno.makeTempDir({ prefix: "rock-agent-cli-" });
  try {
    const cases: [string, unknown, RegExp][] = [
      ["no_run_cmd.yaml", { env: { A: "1" } }, /key "run_cmd": required/],
      [
        "ruby.yaml",
        { run_cmd: "x", runtime_env_config: { type: "ruby" } },
        /key "runtime_env_config\.type": expected "python" or "node"/,
      ],
      [
        "timeout.yaml",
        { run_cmd: "x", agent_run_timeout: 0 },
        /key "agent_run_timeout": expected a number of seconds above zero/,
      ],
      [
        "model_service.yaml",
        { run_cmd: "x", model_service_config: { enabled: true, type: "remote" } },
        /key "model_service_config\.type": expected "local" or "proxy"/,
      ],
    ];
    for (const [name, config, pattern] of cases) {
      const path = await writeConfig(dir, name, config);
      const run = await rockAgent([
        "run",
        "--config",
        path,
        "--prompt",
        "p",
        "--base-url",
        admin.url,
      ]);
      assert.equal(run.code, 2, `${name}: ${run.stderr}`);
      const lines = run.stderr.trim().split("\n");
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0] ?? "", /^error: /);
      assert.match(lines[0] ?? "", pattern, name);
      assert.equal(run.stdout, "");
    }
    const badEnv = await rockAgent(
      ["run", "--config", join(dir, "ruby.yaml"), "--prompt", "p", "--base-url", admin.url],
      { ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: "{" },
    );
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /^error: Invalid ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: not JSON/);
    const missing = await rockAgent(["run", "--config", join(dir, "none.yaml"), "--prompt", "p"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: Cannot read agent config ".*none\.yaml"/);
    const noPrompt = await rockAgent(["run", "--config", join(dir, "ruby.yaml")]);
    assert.equal(noPrompt.code, 2);
    assert.match(noPrompt.stderr, /required option '--prompt <text>' not specified/);

    assert.equal((await admin.manager.list({}, 1, 10)).total, 0, "no sandbox was started");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

hostToolTest(
  ["node"],
  "rock agent run: prints the agent's output, exits with its exit code, and stops the sandbox unless --keep",
  async () => {
    await using admin = await startAdminServer("local");
    const dir = await Deno.makeTempDir({ prefix: "rock-agent-cli-" });
    const leftovers: string[] = [];
    try {
      const config = await writeConfig(dir, "rock_agent_config.yaml", {
        run_cmd: "bash ${working_dir}/agent.sh ${prompt}; echo workdir=${working_dir}",
        working_dir: STAND_IN_AGENT_DIR,
        env: { STAND_IN_EXIT_CODE: "3" },
        runtime_env_config: SYSTEM_RUNTIME.local.config,
        // The agent's exit code is the last command's: echo's 0 here.
        post_init_cmds: [{ command: "echo ready > ${working_dir}/ready" }],
      });
      const args = ["run", "--config", config, "--prompt", "fix it's bug", "--image", TEST_IMAGE];
      const run = await rockAgent([
        ...args,
        "--base-url",
        admin.url,
        "--memory",
        "1g",
        "--cpus",
        "1",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.equal(lines[0], "prompt: fix it's bug");
      const workdir = /^workdir=(\S+)$/.exec(lines.at(-1)!)?.[1];
      assert.ok(workdir, run.stdout);
      leftovers.push(workdir);
      let page = await admin.manager.list({}, 1, 10);
      assert.deepEqual(page.items.map((item) => item.state), ["stopped"]);

      const exiting = await writeConfig(dir, "exit3.yaml", {
        run_cmd: "bash ${working_dir}/agent.sh ${prompt}",
        working_dir: STAND_IN_AGENT_DIR,
        env: { STAND_IN_EXIT_CODE: "3" },
        runtime_env_config: SYSTEM_RUNTIME.local.config,
      });
      const three = await rockAgent([
        "run",
        "--config",
        exiting,
        "--prompt",
        "p",
        "--base-url",
        admin.url,
        "--keep",
      ]);
      assert.equal(three.code, 3, three.stderr);
      assert.match(three.stdout, /^prompt: p\ncwd: (\/tmp\/rock_workdir_\w+)\n$/);
      leftovers.push(/cwd: (\S+)/.exec(three.stdout)?.[1] ?? "");
      const kept = /^sandbox (\S+) kept running$/m.exec(three.stderr)?.[1];
      assert.ok(kept, three.stderr);
      page = await admin.manager.list({ state: ["running"] }, 1, 10);
      assert.deepEqual(page.items.map((item) => item.sandbox_id), [kept]);
      await admin.manager.stop(kept);
    } finally {
      for (const path of leftovers) await Deno.remove(path, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);
