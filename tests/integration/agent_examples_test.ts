/**
 * The agent examples: every rock_agent_config.yaml under examples/agents validates (with the
 * commands ROCK's examples use), and the offline hello_agent example runs against a real admin.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAgentConfig, type RockAgentConfig } from "../../src/sdk/agent/config.ts";
import { startAdminServer } from "../helpers/admin_server.ts";
import { hostToolTest } from "../helpers/host_tools.ts";

const EXAMPLES = fileURLToPath(new URL("../../examples/agents", import.meta.url));

async function configFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await configFiles(path));
    else if (entry.name === "rock_agent_config.yaml") found.push(path);
  }
  return found.sort();
}

Deno.test("every examples/agents config validates, with ROCK's agent commands", async () => {
  const configs: Record<string, RockAgentConfig> = {};
  for (const path of await configFiles(EXAMPLES)) {
    configs[relative(EXAMPLES, path)] = await loadAgentConfig(path);
  }
  assert.deepEqual(Object.keys(configs), [
    "claude_code/rock_agent_config.yaml",
    "hello_agent/rock_agent_config.yaml",
    "iflow_cli/rock_agent_config.yaml",
    "model_service/local/rock_agent_config.yaml",
    "model_service/proxy/rock_agent_config.yaml",
    "swe_agent/rock_agent_config.yaml",
  ]);
  const claude = configs["claude_code/rock_agent_config.yaml"];
  assert.ok(claude);
  assert.equal(claude.run_cmd, "claude -p ${prompt}");
  assert.equal(claude.runtime_env_config.type, "node");
  assert.equal(configs["iflow_cli/rock_agent_config.yaml"]?.run_cmd, "iflow -p ${prompt} --yolo");
  const swe = configs["swe_agent/rock_agent_config.yaml"];
  assert.ok(swe);
  assert.deepEqual(
    [swe.runtime_env_config.type, swe.runtime_env_config.version, swe.skip_wrap_run_cmd],
    ["python", "3.12", true],
  );
  assert.match(
    swe.run_cmd,
    /^\$\{bin_dir\}\/sweagent run .*--problem_statement\.text \$\{prompt\}/,
  );
  assert.equal(swe.project_path, "/tmp/testbed");
  for (const mode of ["local", "proxy"] as const) {
    const config = configs[`model_service/${mode}/rock_agent_config.yaml`];
    assert.ok(config);
    assert.equal(config.run_cmd, "iflow -p ${prompt} --yolo");
    assert.deepEqual(
      [config.model_service_config.enabled, config.model_service_config.type],
      [true, mode],
    );
  }
  const hello = configs["hello_agent/rock_agent_config.yaml"];
  assert.equal(hello?.working_dir, join(EXAMPLES, "hello_agent", "workdir"));
});

// The example's runtime env is the sandbox's own python3; the local backend's sandbox is this machine.
hostToolTest(
  ["python3"],
  "examples/agents/hello_agent runs offline without arguments and prints its greeting, prompt and python",
  async () => {
    await using admin = await startAdminServer("local");
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(EXAMPLES, "hello_agent", "hello_agent.ts")],
      env: { ROCK_BASE_URL: admin.url },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.match(
      stdout,
      /^Hello from an agent in a sandbox\nprompt: say hello\npython: Python 3\.\d+\.\d+\n/,
    );
    assert.match(stdout, /^\[agent\] exit code: 0$/m);
    assert.match(stderr, /^\[agent\] sandbox \S+ is running$/m);
    const page = await admin.manager.list({}, 1, 10);
    assert.deepEqual(page.items.map((item) => item.state), ["stopped"], "the example stopped it");
    // The local backend's /tmp is this machine's: remove the working dirs this example uploaded.
    for await (const entry of Deno.readDir("/tmp")) {
      const dir = join("/tmp", entry.name);
      if (!entry.name.startsWith("rock_workdir_")) continue;
      const names = await Array.fromAsync(Deno.readDir(dir), (item) => item.name).catch(() => []);
      if (names.sort().join(",") === "agent.sh,python-version.txt") {
        await Deno.remove(dir, { recursive: true });
      }
    }
  },
);
