/**
 * rock_agent_config.yaml validation (ROCK's keys and defaults, errors naming the key), the
 * ROCK_* agent settings, command templates and quoting, and the checks RockAgent and runtime
 * envs make before they send anything to a sandbox.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, RockError } from "../../src/common/errors.ts";
import type { z } from "zod";
import {
  type AgentBashCommand,
  AgentBashCommandSchema,
  type AgentModelServiceConfig,
  AgentModelServiceConfigSchema,
  loadAgentConfig,
  parseAgentConfig,
  type RockAgentConfig,
  RockAgentConfigSchema,
} from "../../src/sdk/agent/config.ts";
import { RockAgent } from "../../src/sdk/agent/rock_agent.ts";
import { agentSettingsFromEnv } from "../../src/sdk/agent/settings.ts";
import { createRuntimeEnv } from "../../src/sdk/runtime_env/create_runtime_env.ts";
import type {
  NodeRuntimeEnvConfig,
  NodeRuntimeEnvConfigSchema,
  PythonRuntimeEnvConfig,
  PythonRuntimeEnvConfigSchema,
  RuntimeEnvConfig,
  RuntimeEnvConfigSchema,
  RuntimeEnvSandbox,
} from "../../src/sdk/runtime_env/runtime_env.ts";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { formatTemplate, shellQuote } from "../../src/sdk/shell_text.ts";

/** True when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;

Deno.test("the documented config interfaces are exactly what the schemas produce", () => {
  // Each line fails to type-check when an interface and its schema drift apart.
  const same: true[] = [
    true as Equal<z.output<typeof RockAgentConfigSchema>, RockAgentConfig>,
    true as Equal<z.output<typeof AgentBashCommandSchema>, AgentBashCommand>,
    true as Equal<z.output<typeof AgentModelServiceConfigSchema>, AgentModelServiceConfig>,
    true as Equal<z.output<typeof PythonRuntimeEnvConfigSchema>, PythonRuntimeEnvConfig>,
    true as Equal<z.output<typeof NodeRuntimeEnvConfigSchema>, NodeRuntimeEnvConfig>,
    true as Equal<z.output<typeof RuntimeEnvConfigSchema>, RuntimeEnvConfig>,
  ];
  assert.equal(same.length, 6);
});

async function rejectsWith(value: unknown, pattern: RegExp): Promise<void> {
  await assert.rejects(parseAgentConfig(value, { source: "a.yaml" }), (error: Error) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parseAgentConfig() applies ROCK's defaults", async () => {
  const config = await parseAgentConfig({ run_cmd: "claude -p ${prompt}" });
  assert.equal(config.agent_type, "default");
  assert.equal(config.version, "default");
  assert.equal(config.agent_installed_dir, "/tmp/installed_agent");
  assert.match(config.agent_name, /^[0-9a-f]{32}$/);
  assert.match(config.instance_id, /^instance-id-[0-9a-f]{32}$/);
  assert.match(config.agent_session, /^agent-session-[0-9a-f]{32}$/);
  assert.equal(config.project_path, undefined);
  assert.equal(config.use_deploy_working_dir_as_fallback, true);
  assert.deepEqual([config.env, config.pre_init_cmds, config.post_init_cmds], [{}, [], []]);
  assert.deepEqual(
    [config.agent_install_timeout, config.agent_run_timeout, config.agent_run_check_interval],
    [600, 1800, 30],
  );
  assert.equal(config.skip_wrap_run_cmd, false);
  assert.deepEqual(config.runtime_env_config, {
    type: "python",
    version: "default",
    env: {},
    install_timeout: 600,
  });
  const service = config.model_service_config;
  assert.deepEqual([service.enabled, service.type, service.install_timeout], [false, "local", 300]);
  assert.equal(service.start_cmd, "rock model-service start --type ${type}");
  assert.equal(service.watch_agent_cmd, "rock model-service watch-agent --pid ${pid}");
  assert.equal(service.runtime_env_config.type, "python");
  assert.deepEqual([service.logging_path, service.logging_file_name], [
    "/data/logs",
    "model_service.log",
  ]);
});

Deno.test("parseAgentConfig() fails naming the key: missing run_cmd, unknown runtime type, bad timeouts", async () => {
  await rejectsWith(
    {},
    /^Invalid agent config "a\.yaml": key "run_cmd": required: the command that runs the agent/,
  );
  await rejectsWith(
    { run_cmd: "x", runtime_env_config: { type: "ruby" } },
    /^Invalid agent config "a\.yaml": key "runtime_env_config\.type": expected "python" or "node"$/,
  );
  await rejectsWith(
    { run_cmd: "x", runtime_env_config: { version: "3.12" } },
    /key "runtime_env_config\.type": expected "python" or "node"$/,
  );
  await rejectsWith(
    { run_cmd: "x", agent_run_timeout: -5 },
    /^Invalid agent config "a\.yaml": key "agent_run_timeout": expected a number of seconds above zero$/,
  );
  await rejectsWith(
    { run_cmd: "x", agent_install_timeout: "ten" },
    /key "agent_install_timeout": expected a number of seconds$/,
  );
  await rejectsWith(
    { run_cmd: "x", agent_run_timeout: 20 },
    /key "agent_run_check_interval": must be less than agent_run_timeout \(30 >= 20\)$/,
  );
  await rejectsWith(
    { run_cmd: "x", post_init_cmds: [{ command: "ls", timeout_seconds: 0 }] },
    /key "post_init_cmds\.0\.timeout_seconds": expected a number of seconds above zero$/,
  );
  await rejectsWith(
    { run_cmd: "x", runtime_env_config: { type: "python", version: 3.10 } },
    /key "runtime_env_config\.version": expected one of "3\.11", "3\.12", "default", "system"$/,
  );
  await rejectsWith(
    { run_cmd: "x", runtime_env_config: { type: "node", pip: ["requests"] } },
    /key "runtime_env_config\.pip": unknown key$/,
  );
  await rejectsWith(
    { run_cmd: "x", run_timeout: 5, model_service_config: { enabled: true, typo: 1 } },
    /key "model_service_config\.typo": unknown key; key "run_timeout": unknown key$/,
  );
  await rejectsWith(
    { run_cmd: "x", model_service_config: { type: "remote" } },
    /key "model_service_config\.type": expected "local" or "proxy"$/,
  );
  await rejectsWith(
    { run_cmd: "x", working_dir: "/no/such/dir" },
    /key "working_dir": "\/no\/such\/dir" does not exist$/,
  );
  const file = await Deno.makeTempFile();
  try {
    await rejectsWith(
      { run_cmd: "x", working_dir: file },
      /key "working_dir": ".+" is not a directory$/,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("parseAgentConfig() takes YAML numbers as text where text is meant", async () => {
  const config = await parseAgentConfig({
    run_cmd: "x",
    env: { PORT: 8080, DEBUG: true },
    runtime_env_config: { type: "python", version: 3.12 },
  });
  assert.deepEqual(config.env, { PORT: "8080", DEBUG: "true" });
  assert.equal(config.runtime_env_config.version, "3.12");
});

Deno.test("loadAgentConfig() resolves working_dir and pip files against the file's directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-agent-config-" });
  try {
    await Deno.mkdir(join(dir, "work"));
    await Deno.writeTextFile(
      join(dir, "rock_agent_config.yaml"),
      [
        'run_cmd: "iflow -p ${prompt} --yolo"',
        "working_dir: ./work",
        "runtime_env_config:",
        "  type: python",
        "  pip: requirements.txt",
        "pre_init_cmds:",
        "  - command: echo hi",
      ].join("\n"),
    );
    const config = await loadAgentConfig(join(dir, "rock_agent_config.yaml"));
    assert.equal(config.working_dir, join(dir, "work"));
    assert.equal(
      config.runtime_env_config.type === "python" && config.runtime_env_config.pip,
      join(dir, "requirements.txt"),
    );
    assert.deepEqual(config.pre_init_cmds, [{ command: "echo hi", timeout_seconds: 300 }]);

    await Deno.writeTextFile(join(dir, "bad.yaml"), "run_cmd: [unclosed\n");
    await assert.rejects(
      loadAgentConfig(join(dir, "bad.yaml")),
      /^ConfigError: Cannot parse agent config ".*bad\.yaml": /,
    );
    await Deno.writeTextFile(join(dir, "list.yaml"), "- run_cmd: x\n");
    await assert.rejects(
      loadAgentConfig(join(dir, "list.yaml")),
      /Invalid agent config ".*list\.yaml": expected a mapping of keys/,
    );
    await Deno.writeTextFile(join(dir, "empty.yaml"), "");
    await assert.rejects(loadAgentConfig(join(dir, "empty.yaml")), /key "run_cmd": required/);
    await assert.rejects(
      loadAgentConfig(join(dir, "missing.yaml")),
      /^ConfigError: Cannot read agent config ".*missing\.yaml": /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pre_init_cmds default to ROCK_AGENT_PRE_INIT_BASH_CMD_LIST; install commands and the pip index come from the environment given", async () => {
  const settings = agentSettingsFromEnv({
    ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: '[{"command": "apt-get update", "timeout_seconds": 60}]',
    ROCK_RTENV_NODE_V22180_INSTALL_CMD: "cp -r /opt/node runtime-env",
    ROCK_PIP_INDEX_URL: "http://mirror/simple",
    HOME: "/root",
  });
  assert.deepEqual(settings.preInitCmds, [{ command: "apt-get update", timeout_seconds: 60 }]);
  assert.deepEqual(settings.runtimeEnv, {
    installCommands: { ROCK_RTENV_NODE_V22180_INSTALL_CMD: "cp -r /opt/node runtime-env" },
    pipIndexUrl: "http://mirror/simple",
  });
  const defaulted = await parseAgentConfig({ run_cmd: "x" }, { preInitCmds: settings.preInitCmds });
  assert.deepEqual(defaulted.pre_init_cmds, [{ command: "apt-get update", timeout_seconds: 60 }]);
  const own = await parseAgentConfig({ run_cmd: "x", pre_init_cmds: [] }, {
    preInitCmds: settings.preInitCmds,
  });
  assert.deepEqual(own.pre_init_cmds, []);

  assert.deepEqual(agentSettingsFromEnv({}), {
    runtimeEnv: { installCommands: {} },
    preInitCmds: [],
  });
  assert.throws(
    () => agentSettingsFromEnv({ ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: "[{" }),
    /^ConfigError: Invalid ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: not JSON: /,
  );
  assert.throws(
    () => agentSettingsFromEnv({ ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: '[{"cmd": "ls"}]' }),
    /^ConfigError: Invalid ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: item "0.command": /,
  );
});

Deno.test("formatTemplate() fills known keys as ROCK's deploy.format does and leaves the rest", () => {
  const values = { prompt: "'hi there'", working_dir: "/tmp/w", bin_dir: undefined };
  assert.equal(
    formatTemplate("run ${prompt} in <<working_dir>>", values),
    "run 'hi there' in /tmp/w",
  );
  assert.equal(
    formatTemplate("cd $working_dir/x && a $prompt", values),
    "cd /tmp/w/x && a 'hi there'",
  );
  assert.equal(
    formatTemplate("${bin_dir}/x <<bin_dir>> $HOME ${HOME}", values),
    "${bin_dir}/x <<bin_dir>> $HOME ${HOME}",
  );
  assert.equal(
    formatTemplate("echo $((3 << 2 >> 1)) $(pwd) $1 $", values),
    "echo $((3 << 2 >> 1)) $(pwd) $1 $",
  );
  assert.equal(formatTemplate("echo $$prompt", values), "echo $prompt", "$$ is a literal $");
});

Deno.test("shellQuote() quotes as Python's shlex.quote", () => {
  assert.equal(shellQuote("plain/path-1.txt"), "plain/path-1.txt");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("it's $HOME"), `'it'"'"'s $HOME'`.replace(`'"'"'`, `'\\''`));
  assert.equal(shellQuote("a b"), "'a b'");
});

/** A sandbox that records what would be sent and sends nothing. */
function recordingSandbox(sent: string[]): RuntimeEnvSandbox {
  return {
    sandboxId: "sb-unit",
    arun: (command) => {
      sent.push(command);
      return Promise.resolve({ output: "", exitCode: 0, failureReason: "" });
    },
    createSession: (session) => {
      sent.push(`session ${session}`);
      return Promise.resolve();
    },
    uploadByPath: () => Promise.reject(new Error("unexpected upload")),
  };
}

Deno.test("createRuntimeEnv() validates the config, names its dirs, and wraps commands without sending anything", () => {
  const sent: string[] = [];
  const env = createRuntimeEnv(recordingSandbox(sent), { type: "node", version: "22.18.0" });
  assert.match(env.workdir, /^\/tmp\/rock-runtime-envs\/node\/22\.18\.0\/[0-9a-f]{8}$/);
  assert.equal(env.session, `runtime-env-node-22.18.0-${env.id}`);
  assert.equal(env.binDir, `${env.workdir}/runtime-env/bin`);
  assert.equal(
    env.wrappedCmd("npm i -g x"),
    `bash -c 'export PATH=${env.binDir}:$PATH && npm i -g x'`,
  );
  assert.equal(
    env.wrappedCmd("echo 'a'", { append: true }),
    `bash -c 'export PATH=$PATH:${env.binDir} && echo '\\''a'\\'''`,
  );
  const system = createRuntimeEnv(recordingSandbox(sent), { type: "python", version: "system" });
  assert.throws(
    () => system.binDir,
    /known only after init\(\): it is where the image's python3 or python is/,
  );
  assert.throws(
    () => createRuntimeEnv(recordingSandbox(sent), { type: "python", version: "2.7" } as never),
    (error: Error) => {
      assert.ok(error instanceof RockError);
      assert.match(error.message, /^Invalid runtime env config: field "version": expected one of/);
      return true;
    },
  );
  assert.deepEqual(sent, []);
});

Deno.test("RockAgent sends nothing before install(), with or without a model service", async () => {
  let requests = 0;
  const sandbox = new Sandbox({
    baseUrl: "http://127.0.0.1:9",
    fetch: () => {
      requests++;
      return Promise.reject(new Error("no admin here"));
    },
  });
  const config = await parseAgentConfig({
    run_cmd: "x",
    model_service_config: { enabled: true },
  });
  const withService = new RockAgent(sandbox, config);
  assert.equal(withService.modelService, undefined, "the model service is made at install()");
  const plain = new RockAgent(sandbox, await parseAgentConfig({ run_cmd: "x" }));
  assert.throws(() => plain.runCommand("p"), /Cannot run the agent: call install\(\) first/);
  await assert.rejects(plain.run("p"), /call install\(\) first/);
  assert.equal(requests, 0);
});
