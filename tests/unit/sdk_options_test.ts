/**
 * SDK options given as `undefined` take their defaults, the way a caller passes an optional value
 * on (`new Sandbox({ baseUrl: maybeUrl })`): every constructor and options object of src/sdk/.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BadRequestError,
  CancelledError,
  CommandTimeoutError,
  ConfigError,
  FileOperationError,
  UnavailableError,
} from "../../src/common/errors.ts";
import { withDefaults } from "../../src/common/options.ts";
import { parseAgentConfig, type RockAgentConfig } from "../../src/sdk/agent/config.ts";
import { RockAgent } from "../../src/sdk/agent/rock_agent.ts";
import { createRuntimeEnv } from "../../src/sdk/runtime_env/create_runtime_env.ts";
import { PythonRuntimeEnv } from "../../src/sdk/runtime_env/python_env.ts";
import {
  AdminClient,
  BadRequestRockError,
  CommandRockError,
  DEFAULT_ENVHUB_URL,
  DEFAULT_SANDBOX_ROCK_COMMAND,
  EnvHubClient,
  ModelService,
  Sandbox,
  SandboxGroup,
  TrainerSession,
} from "../../src/sdk/mod.ts";
import { DEFAULT_ROCKLET_URL, RockletClient } from "../../src/sdk/rocklet_client.ts";
import { startAdminServer } from "../helpers/admin_server.ts";
import { testSandboxId } from "../helpers/docker.ts";

/** `value` as JSON sees it: a key kept as undefined is the same as a key left out. */
function comparable(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Runs `body` with ROCK_BASE_URL set to `url`, restoring it afterwards. */
async function withBaseUrl<T>(url: string, body: () => Promise<T> | T): Promise<T> {
  const before = Deno.env.get("ROCK_BASE_URL");
  Deno.env.set("ROCK_BASE_URL", url);
  try {
    return await body();
  } finally {
    if (before === undefined) Deno.env.delete("ROCK_BASE_URL");
    else Deno.env.set("ROCK_BASE_URL", before);
  }
}

Deno.test("withDefaults() keeps a default when the option is undefined and drops undefined extras", () => {
  const options: { tail?: number | undefined; follow?: boolean; name?: string | undefined } = {
    tail: undefined,
    follow: false,
    name: undefined,
  };
  const merged = withDefaults({ tail: 200, follow: true }, options);
  assert.deepEqual(merged, { tail: 200, follow: false });
  assert.deepEqual(withDefaults({ tail: 200 }, undefined), { tail: 200 });
});

Deno.test("new Sandbox() with every field undefined uses the defaults and $ROCK_BASE_URL", async () => {
  await withBaseUrl("http://127.0.0.1:9", () => {
    const sandbox = new Sandbox({
      baseUrl: undefined,
      extraHeaders: undefined,
      image: undefined,
      memory: undefined,
      cpus: undefined,
      pull: undefined,
      autoClearSeconds: undefined,
      startupTimeout: undefined,
      userId: undefined,
      experimentId: undefined,
      namespace: undefined,
      cluster: undefined,
      sandboxId: undefined,
      fetch: undefined,
    });
    assert.deepEqual(sandbox.config, {
      baseUrl: "http://127.0.0.1:9",
      extraHeaders: {},
      image: "python:3.11",
      memory: "8g",
      cpus: 2,
      pull: "missing",
      autoClearSeconds: 300,
      startupTimeout: 180,
    });
    assert.equal(sandbox.client.url, "http://127.0.0.1:9/apis/envs/sandbox/v1");
    assert.throws(() => sandbox.sandboxId, BadRequestRockError);
  });
});

Deno.test("new SandboxGroup() with every field undefined uses the group's defaults", () => {
  const group = new SandboxGroup({
    size: undefined,
    startConcurrency: undefined,
    startRetryTimes: undefined,
    configFor: undefined,
    image: undefined,
  });
  assert.deepEqual(group.config, { size: 2, startConcurrency: 2, startRetryTimes: 3 });
});

Deno.test("the clients take their default URLs and options when given undefined", async () => {
  await withBaseUrl("http://127.0.0.1:9/", () => {
    const admin = new AdminClient(undefined, { headers: undefined, fetch: undefined });
    assert.equal(admin.url, "http://127.0.0.1:9/apis/envs/sandbox/v1");
  });
  const rocklet = new RockletClient(undefined, { fetch: undefined, headers: undefined });
  assert.equal(rocklet.baseUrl, DEFAULT_ROCKLET_URL);
  const hub = new EnvHubClient(undefined, { headers: undefined, fetch: undefined });
  assert.equal(hub.baseUrl, DEFAULT_ENVHUB_URL);
});

Deno.test("new ModelService() with every option undefined uses the defaults in its commands", () => {
  const service = new ModelService(new Sandbox({ sandboxId: "x" }), {
    type: undefined,
    rockCommand: undefined,
    dataDir: undefined,
    stateDir: undefined,
    loggingPath: undefined,
    loggingFileName: undefined,
    env: undefined,
    configFile: undefined,
    host: undefined,
    port: undefined,
    proxyBaseUrl: undefined,
    retryableStatusCodes: undefined,
    requestTimeout: undefined,
    commandTimeout: undefined,
  });
  assert.deepEqual(service.options, {
    type: "local",
    rockCommand: DEFAULT_SANDBOX_ROCK_COMMAND,
    loggingPath: "/data/logs",
    loggingFileName: "model_service.log",
    commandTimeout: 60,
  });
  assert.equal(
    service.command("stop"),
    `ROCK_LOGGING_PATH='/data/logs' ROCK_LOGGING_FILE_NAME='model_service.log' ` +
      `${DEFAULT_SANDBOX_ROCK_COMMAND} model-service stop`,
  );
});

Deno.test("agent and runtime env configs with every key undefined get the defaults", async () => {
  const defaults = await parseAgentConfig({ run_cmd: "agent" });
  const undefinedKeys = await parseAgentConfig({
    run_cmd: "agent",
    agent_type: undefined,
    agent_name: undefined,
    version: undefined,
    agent_installed_dir: undefined,
    instance_id: undefined,
    project_path: undefined,
    use_deploy_working_dir_as_fallback: undefined,
    agent_session: undefined,
    env: undefined,
    pre_init_cmds: undefined,
    post_init_cmds: undefined,
    agent_install_timeout: undefined,
    agent_run_timeout: undefined,
    agent_run_check_interval: undefined,
    working_dir: undefined,
    skip_wrap_run_cmd: undefined,
    runtime_env_config: undefined,
    model_service_config: {
      enabled: undefined,
      type: undefined,
      install_cmd: undefined,
      install_timeout: undefined,
      runtime_env_config: undefined,
      start_cmd: undefined,
      stop_cmd: undefined,
      config_ini_cmd: undefined,
      watch_agent_cmd: undefined,
      anti_call_llm_cmd: undefined,
      anti_call_llm_cmd_no_response: undefined,
      logging_path: undefined,
      logging_file_name: undefined,
    },
  }, { source: undefined, baseDir: undefined, preInitCmds: undefined });
  // Names made up per config differ; everything else is the same.
  const named = (config: RockAgentConfig) => ({
    ...config,
    agent_name: "",
    instance_id: "",
    agent_session: "",
  });
  assert.deepEqual(comparable(named(undefinedKeys)), comparable(named(defaults)));

  const sandbox = new Sandbox({ sandboxId: "x" });
  const python = createRuntimeEnv(sandbox, {
    type: "python",
    version: undefined,
    pip: undefined,
    pip_index_url: undefined,
    env: undefined,
    install_timeout: undefined,
    custom_install_cmd: undefined,
    extra_symlink_dir: undefined,
    extra_symlink_executables: undefined,
  }, {
    installCommands: undefined,
    pipIndexUrl: undefined,
    installAttempts: undefined,
    retryDelayMs: undefined,
  });
  const plain = createRuntimeEnv(sandbox, { type: "python" });
  assert.ok(python instanceof PythonRuntimeEnv && plain instanceof PythonRuntimeEnv);
  assert.deepEqual(comparable(python.config), comparable(plain.config));
  assert.equal(python.pipIndexUrl, undefined);

  const dir = await Deno.makeTempDir({ prefix: "rock-options-test-" });
  try {
    const file = join(dir, "rock_agent_config.yaml");
    await Deno.writeTextFile(file, "run_cmd: agent\n");
    const agent = await RockAgent.fromFile(sandbox, file, {
      runtimeEnv: undefined,
      modelService: undefined,
      onProgress: undefined,
      preInitCmds: undefined,
    });
    assert.deepEqual(agent.config.pre_init_cmds, []);
    using session = TrainerSession.open(join(dir, "LLMService.log"), {
      pollIntervalMs: undefined,
      now: undefined,
    });
    assert.equal(await session.next(AbortSignal.abort()), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error options given as undefined keep each class's code, status and class path", () => {
  const none = {
    code: undefined,
    status: undefined,
    classPath: undefined,
    extraInfo: undefined,
    cause: undefined,
  };
  const cases: [Error & { code: number; status: number; classPath: string }, number, number][] = [
    [new BadRequestError("x", none), 4000, 422],
    [new ConfigError("x", none), 4000, 400],
    [new CommandTimeoutError("x", none), 6000, 511],
    [new FileOperationError("x", none), 4000, 511],
    [new CancelledError("x", none), 4000, 499],
    [new UnavailableError("x", none), 5000, 503],
    [new BadRequestRockError("x", none), 4000, 422],
    [new CommandRockError("x", none), 6000, 511],
  ];
  for (const [error, code, status] of cases) {
    assert.deepEqual([error.name, error.code, error.status], [error.name, code, status]);
  }
  assert.equal(new FileOperationError("x", none).classPath, "builtins.OSError");
});

Deno.test("a Sandbox, arun, execute and a group with every option undefined run against $ROCK_BASE_URL", async () => {
  await using admin = await startAdminServer("local");
  await withBaseUrl(admin.url, async () => {
    const ids: string[] = [];
    try {
      await using sandbox = await new Sandbox({
        baseUrl: undefined,
        image: undefined,
        memory: "1g",
        cpus: 1,
        pull: undefined,
        sandboxId: testSandboxId("options"),
      }).start({ onStatus: undefined, signal: undefined });
      ids.push(sandbox.sandboxId);
      const normal = await sandbox.arun("echo hi", {
        session: undefined,
        mode: undefined,
        waitTimeout: undefined,
        check: undefined,
        outputFile: undefined,
        ignoreOutput: undefined,
        responseLimitedBytes: undefined,
      });
      assert.deepEqual(normal, { output: "hi", exitCode: 0, failureReason: "" });
      const executed = await sandbox.execute(["echo", "argv"], {
        timeout: undefined,
        env: undefined,
        cwd: undefined,
        shell: undefined,
        check: undefined,
      });
      assert.deepEqual(executed, { stdout: "argv\n", stderr: "", exit_code: 0 });
      const script = await sandbox.process.executeScript("echo script", {
        name: undefined,
        waitTimeout: undefined,
        cleanup: undefined,
        check: undefined,
      });
      assert.deepEqual([script.output, script.exitCode], ["script", 0]);

      await using group = await new SandboxGroup({
        size: undefined,
        startConcurrency: undefined,
        startRetryTimes: undefined,
        configFor: undefined,
        baseUrl: undefined,
        memory: "1g",
        cpus: 1,
      }).start();
      ids.push(...group.sandboxes.map((s) => s.sandboxId));
      assert.deepEqual([group.sandboxes.length, group.failures], [2, []]);
    } finally {
      for (const id of ids) await admin.manager.stop(id).catch(() => {});
    }
  });
});
