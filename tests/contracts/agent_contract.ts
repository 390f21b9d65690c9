/**
 * Runtime envs and RockAgent against a real admin (one suite, every backend): a `system` runtime
 * linked onto the PATH, install retries, an install command supplied by the caller, and a
 * stand-in agent installed from a working dir and run with its real exit code, init commands in
 * order, a timeout that stops the agent, and the model service told the agent's pid.
 * On the local backend the sandbox is this machine: links go to a temp dir, not /usr/local/bin,
 * and the `system` runtime is the node that runs the test command (`npx deno`), not a python3.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type AgentModelService } from "../../src/sdk/agent/agent_model_service.ts";
import { parseAgentConfig, type RockAgentConfigInput } from "../../src/sdk/agent/config.ts";
import { RockAgent, type RockAgentOptions } from "../../src/sdk/agent/rock_agent.ts";
import { CommandRockError } from "../../src/sdk/errors.ts";
import { createRuntimeEnv } from "../../src/sdk/runtime_env/create_runtime_env.ts";
import type { RuntimeEnv } from "../../src/sdk/runtime_env/runtime_env.ts";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { ModelService } from "../../src/sdk/model_service.ts";
import { type AdminServer, startAdminServer, testSandboxConfig } from "../helpers/admin_server.ts";

/** Registers one test (Deno.test, or dockerTest for docker). */
export type Register = (name: string, fn: () => Promise<void>) => void;

/** The stand-in agent's working dir (agent.sh; agent.py, which also asks a model). */
export const STAND_IN_AGENT_DIR = fileURLToPath(
  new URL("../fixtures/stand_in_agent", import.meta.url),
);

/** Starts a sandbox on `admin` for a test. */
export function startTestSandbox(admin: AdminServer, label: string): Promise<Sandbox> {
  return new Sandbox(testSandboxConfig(admin, label)).start();
}

/** Removes what a test left in a sandbox's /tmp (on the local backend that is this machine's). */
async function cleanUp(sandbox: Sandbox, paths: (string | undefined)[]): Promise<void> {
  const existing = paths.filter((path): path is string => Boolean(path));
  if (existing.length > 0) await sandbox.execute(["rm", "-rf", ...existing]).catch(() => {});
}

/** True when process `pid` has exited (no /proc entry, or a zombie nobody reaped yet). */
async function isGone(sandbox: Sandbox, pid: number): Promise<boolean> {
  const check = await sandbox.execute([
    "sh",
    "-c",
    `[ ! -d /proc/${pid} ] || grep -q '^State:[[:space:]]*Z' /proc/${pid}/status`,
  ]);
  return check.exit_code === 0;
}

/** The runtime a backend's sandbox has of its own, for runtime envs of version `system`. */
export const SYSTEM_RUNTIME = {
  docker: {
    config: { type: "python", version: "system" },
    executable: "python3",
    version: /^Python 3\.\d+\.\d+$/,
  },
  local: { config: { type: "node", version: "system" }, executable: "node", version: /^v\d+\./ },
} as const;

/** A stand-in agent config (bash, the fixture as working dir, the backend's system runtime). */
export function standInConfig(
  type: keyof typeof SYSTEM_RUNTIME,
  extra: Partial<RockAgentConfigInput> = {},
): RockAgentConfigInput {
  return {
    run_cmd: "bash ${working_dir}/agent.sh ${prompt}",
    working_dir: STAND_IN_AGENT_DIR,
    runtime_env_config: SYSTEM_RUNTIME[type].config,
    agent_run_check_interval: 1,
    ...extra,
  };
}

/** Registers the runtime env and agent contract for `type`. */
export function defineAgentContract(type: keyof typeof SYSTEM_RUNTIME, register: Register): void {
  const label = `Agents (${type})`;
  const runtime = SYSTEM_RUNTIME[type];
  const exe = runtime.executable;

  register(
    `${label}: a runtime env "system" links the sandbox's own ${exe} into extra_symlink_dir, so command -v ${exe} resolves there`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "rtenv-system");
      const linkDir = type === "docker"
        ? "/usr/local/bin"
        : await Deno.makeTempDir({ prefix: "rock-symlinks-" });
      let env: RuntimeEnv | undefined;
      try {
        env = createRuntimeEnv(sandbox, {
          ...runtime.config,
          extra_symlink_dir: linkDir,
          extra_symlink_executables: [exe],
        });
        const kind = runtime.config.type;
        assert.match(
          env.workdir,
          new RegExp(`^/tmp/rock-runtime-envs/${kind}/system/[0-9a-f]{8}$`),
        );
        assert.equal(env.session, `runtime-env-${kind}-system-${env.id}`);
        await env.init();
        assert.equal(env.initialized, true);
        const own = (await sandbox.arun(`command -v ${exe}`)).output.trim();
        // On docker /usr/local/bin comes before /usr/bin on the PATH; here it is put first.
        const lookup = type === "docker"
          ? `command -v ${exe}`
          : `PATH=${linkDir}:$PATH command -v ${exe}`;
        assert.equal((await sandbox.arun(lookup)).output, `${linkDir}/${exe}`);
        const target = (await sandbox.arun(`readlink ${linkDir}/${exe}`)).output;
        assert.equal(target, `${env.binDir}/${exe}`);
        if (type === "docker") assert.equal(env.binDir, "/usr/bin");
        else assert.ok(own.startsWith("/"), own);

        const ran = await env.run(`${exe} --version; exit 4`);
        assert.match(ran.output, runtime.version);
        assert.equal(ran.exitCode, 4);
        const path = await env.run("echo $PATH");
        assert.ok(path.output.startsWith(`${env.binDir}:`), path.output);
      } finally {
        if (type === "docker") await sandbox.execute(["rm", "-f", `${linkDir}/${exe}`]);
        else await Deno.remove(linkDir, { recursive: true });
        await cleanUp(sandbox, [env?.workdir]);
      }
    },
  );

  register(
    `${label}: an install command from the caller provides a runtime (offline), custom_install_cmd adds to it, listed links must exist`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "rtenv-fake");
      const linkDir = `/tmp/rock-test-links-${crypto.randomUUID().slice(0, 8)}`;
      const counter = `/tmp/rock-test-tries-${crypto.randomUUID().slice(0, 8)}`;
      const envs: RuntimeEnv[] = [];
      try {
        // A fake node: what ROCK's command leaves behind is runtime-env/bin/node in the work dir.
        const fakeNode =
          "mkdir -p runtime-env/bin && printf '#!/bin/sh\\necho fake-node \"$@\"\\n' " +
          "> runtime-env/bin/node && chmod +x runtime-env/bin/node";
        const node = createRuntimeEnv(sandbox, {
          type: "node",
          custom_install_cmd:
            "printf '#!/bin/sh\\necho hello from $0\\n' > runtime-env/bin/hello " +
            "&& chmod +x runtime-env/bin/hello",
          extra_symlink_dir: linkDir,
          extra_symlink_executables: ["hello"],
          env: { GREETING: "hi" },
        }, { installCommands: { ROCK_RTENV_NODE_V22180_INSTALL_CMD: fakeNode } });
        envs.push(node);
        await node.init();
        assert.equal(node.binDir, `${node.workdir}/runtime-env/bin`);
        assert.equal((await node.run("node --version")).output, "fake-node --version");
        assert.equal((await node.run("echo $GREETING")).output, "hi", "the env's session env");
        assert.equal(
          (await sandbox.arun(`${linkDir}/hello`)).output,
          `hello from ${linkDir}/hello`,
        );

        const missing = createRuntimeEnv(sandbox, {
          type: "node",
          extra_symlink_dir: linkDir,
          extra_symlink_executables: ["node", "nope"],
        }, { installCommands: { ROCK_RTENV_NODE_V22180_INSTALL_CMD: fakeNode } });
        envs.push(missing);
        await assert.rejects(missing.init(), (error: Error) => {
          assert.ok(error instanceof CommandRockError, String(error));
          assert.match(error.message, /linking node, nope into .* failed with exit code 1/);
          assert.match(
            error.message,
            /not in \/tmp\/rock-runtime-envs\/node\/default\/\w+\/runtime-env\/bin: nope/,
          );
          return true;
        });

        const failing = createRuntimeEnv(sandbox, { type: "python", version: "3.12" }, {
          installCommands: {
            ROCK_RTENV_PYTHON_V31212_INSTALL_CMD: `echo try >> ${counter}; echo boom; exit 7`,
          },
          retryDelayMs: 10,
        });
        envs.push(failing);
        await assert.rejects(failing.init(), (error: Error) => {
          assert.ok(error instanceof CommandRockError, String(error));
          assert.match(
            error.message,
            /^Cannot set up python runtime env "3\.12" in sandbox "[^"]+": the install command \(ROCK_RTENV_PYTHON_V31212_INSTALL_CMD\) failed with exit code 7 after 3 tries: boom$/,
          );
          assert.equal(error.exitCode, 7);
          return true;
        });
        assert.equal((await sandbox.arun(`wc -l < ${counter}`)).output, "3");
      } finally {
        await cleanUp(sandbox, [linkDir, counter, ...envs.map((env) => env.workdir)]);
      }
    },
  );

  register(
    `${label}: RockAgent installs a stand-in agent from its working dir, runs init commands in order, and returns its output and exit code 3`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "agent");
      const projectPath = `/tmp/rock-test-project-${crypto.randomUUID().slice(0, 8)}/a b`;
      const config = await parseAgentConfig(standInConfig(type, {
        env: { STAND_IN_EXIT_CODE: "3", ROLE: "agent" },
        pre_init_cmds: [
          { command: "echo pre1 > ${working_dir}/order.txt" },
          { command: "echo pre2 $ROLE >> <<working_dir>>/order.txt", timeout_seconds: 10 },
        ],
        post_init_cmds: [{ command: 'echo "post1 ${bin_dir}" >> ${working_dir}/order.txt' }],
      }));
      const steps: string[] = [];
      const agent = new RockAgent(sandbox, config, { onProgress: (step) => steps.push(step) });
      const agents = [agent];
      try {
        await agent.install();
        await agent.install(); // once only
        const workingDir = agent.workingDir!;
        assert.match(workingDir, /^\/tmp\/rock_workdir_[0-9a-f]+$/);
        assert.equal(
          await sandbox.readFile(`${workingDir}/order.txt`),
          `pre1\npre2 agent\npost1 ${agent.runtimeEnv!.binDir}\n`,
        );
        assert.deepEqual(steps.slice(0, 4), [
          "uploading the working dir",
          "pre-init command 1 of 2",
          "pre-init command 2 of 2",
          `installing the ${runtime.config.type} runtime env`,
        ]);

        const prompt = `it's a "test" $HOME; exit 9`;
        const result = await agent.run(prompt);
        assert.equal(result.exitCode, 3, result.output);
        assert.equal(result.failureReason, "");
        assert.equal(result.output, `prompt: ${prompt}\ncwd: ${workingDir}`);
        assert.ok(result.pid > 0);
        assert.equal(await sandbox.readFile(result.outputFile), `${result.output}\n`);
        assert.match(
          agent.runCommand("x"),
          /^mkdir -p \/tmp\/rock_workdir_\w+ && cd \/tmp\/rock_workdir_\w+ && bash -c 'export PATH=/,
        );

        const elsewhere = new RockAgent(
          sandbox,
          await parseAgentConfig(standInConfig(type, {
            run_cmd: "pwd; echo $PATH; echo code=$STAND_IN_EXIT_CODE",
            project_path: projectPath,
            skip_wrap_run_cmd: true,
            agent_session: `agent-session-${crypto.randomUUID()}`,
          })),
        );
        agents.push(elsewhere);
        await elsewhere.install();
        const ran = await elsewhere.run("ignored");
        const [cwd, path, code] = ran.output.split("\n");
        assert.equal(cwd, projectPath, "project_path is created and used");
        const plainPath = (await sandbox.arun("echo $PATH")).output;
        assert.equal(path, plainPath, "skip_wrap_run_cmd leaves the PATH alone");
        assert.equal(code, "code=", "another session, without the first agent's env");
        assert.equal(ran.exitCode, 0);
      } finally {
        await cleanUp(sandbox, [
          ...agents.flatMap((made) => [made.workingDir, made.runtimeEnv?.workdir]),
          projectPath.slice(0, projectPath.lastIndexOf("/")),
        ]);
      }
    },
  );

  register(
    `${label}: RockAgent stops an agent that outlives agent_run_timeout and reports no exit code; a failing init command names itself`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "agent-timeout");
      const agent = new RockAgent(
        sandbox,
        await parseAgentConfig(standInConfig(type, {
          run_cmd: 'sleep 60 & echo "child $!"; sleep 60',
          agent_run_timeout: 1.5,
          agent_run_check_interval: 0.5,
        })),
      );
      const failing = new RockAgent(
        sandbox,
        await parseAgentConfig(standInConfig(type, {
          post_init_cmds: [{ command: "true" }, { command: "echo nope; exit 5" }],
        })),
      );
      try {
        await agent.install();
        const begin = performance.now();
        const result = await agent.run("x");
        // A hang guard: the agent would run 60 s if the 1.5 s timeout did not stop it.
        assert.ok(performance.now() - begin < 45_000);
        assert.equal(result.exitCode, null);
        assert.match(
          result.failureReason,
          /^Agent process \d+ did not finish within agent_run_timeout \(1\.5 s\); it was stopped$/,
        );
        // The shell may add a line ("Terminated") when the agent is stopped.
        const child = /^child (\d+)$/m.exec(result.output)?.[1];
        assert.ok(child, result.output);
        assert.equal(await isGone(sandbox, result.pid), true, "the agent is gone");
        assert.equal(await isGone(sandbox, Number(child)), true, "its children are gone too");

        await assert.rejects(failing.install(), (error: Error) => {
          assert.ok(error instanceof CommandRockError, String(error));
          assert.match(
            error.message,
            /^Cannot install the agent in sandbox "[^"]+": post-init command 2 failed with exit code 5: nope$/,
          );
          return true;
        });
      } finally {
        await cleanUp(sandbox, [
          agent.workingDir,
          agent.runtimeEnv?.workdir,
          failing.workingDir,
          failing.runtimeEnv?.workdir,
        ]);
      }
    },
  );

  register(
    `${label}: RockAgent.run() fails soon, naming the sandbox, when the sandbox stops while the agent runs`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "agent-lost");
      const agent = new RockAgent(
        sandbox,
        await parseAgentConfig(standInConfig(type, {
          run_cmd: "sleep 30",
          agent_run_check_interval: 0.2,
          agent_run_timeout: 60,
        })),
      );
      await agent.install();
      const running = agent.run("x");
      running.catch(() => {}); // asserted below
      await new Promise((resolve) => setTimeout(resolve, 500));
      const begin = performance.now();
      await sandbox.stop();
      await assert.rejects(running, (error: Error) => {
        assert.match(
          error.message,
          /^Agent process \d+ lost while it ran: Sandbox "[^"]+" is stopped: stop requested \(stopped at \S+\)$/,
        );
        return true;
      });
      // A hang guard: the agent's own command would run 30 s.
      assert.ok(performance.now() - begin < 20_000);
      if (type === "local") {
        // The sandbox is gone; its /tmp is this machine's.
        for (const path of [agent.workingDir, agent.runtimeEnv?.workdir]) {
          if (path) await Deno.remove(path, { recursive: true });
        }
      }
    },
  );

  register(
    `${label}: RockAgent starts the model service during install, tells it the agent's pid while the agent runs, and stops it`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await startTestSandbox(admin, "agent-ms");
      const calls: string[] = [];
      const service: AgentModelService = {
        start: () => {
          calls.push("start");
          return Promise.resolve();
        },
        watchAgent: async (pid) => {
          calls.push(`watch ${pid} ${(await isGone(sandbox, pid)) ? "gone" : "alive"}`);
        },
        stop: () => {
          calls.push("stop");
          return Promise.resolve();
        },
      };
      const options: RockAgentOptions = {
        modelService: (given, config) => {
          assert.equal(given, sandbox);
          calls.push(`create ${config.type}`);
          return service;
        },
      };
      const config = await parseAgentConfig(standInConfig(type, {
        run_cmd: "sleep 0.5; echo done",
        model_service_config: { enabled: true, type: "proxy" },
      }));
      const agent = new RockAgent(sandbox, config, options);
      try {
        await agent.install();
        const result = await agent.run("x");
        assert.deepEqual([result.output, result.exitCode], ["done", 0]);
        await agent.stop();
        assert.deepEqual(calls, ["create proxy", "start", `watch ${result.pid} alive`, "stop"]);
      } finally {
        await cleanUp(sandbox, [agent.workingDir, agent.runtimeEnv?.workdir]);
      }
    },
  );

  if (type === "docker") {
    register(
      `${label}: RockAgent runs a stand-in agent whose three LLM calls the host-side trainer answers through the in-sandbox model service`,
      async () => {
        await using admin = await startAdminServer(type);
        await using sandbox = await startTestSandbox(admin, "agent-llm");
        const config = await parseAgentConfig(standInConfig(type, {
          run_cmd: "python3 ${working_dir}/agent.py ${prompt}",
          env: {
            STAND_IN_LLM_URL: "http://127.0.0.1:8080/v1",
            STAND_IN_LLM_CALLS: "3",
            STAND_IN_EXIT_CODE: "3",
          },
          model_service_config: { enabled: true, type: "local" },
        }));
        const agent = new RockAgent(sandbox, config);
        try {
          await agent.install();
          assert.ok(agent.modelService, "install() started the model service");
          // The trainer: the SDK's ModelService drives anti-call-llm inside the sandbox.
          const trainer = new ModelService(sandbox);
          const running = agent.run("solve it");
          const asked: string[] = [];
          let request = await trainer.antiCallLlm(0);
          while (request !== "SESSION_END") {
            asked.push(JSON.parse(request).messages[0].content);
            request = await trainer.antiCallLlm(
              asked.length,
              JSON.stringify({
                choices: [{ message: { role: "assistant", content: `answer ${asked.length}` } }],
              }),
            );
          }
          const result = await running;
          assert.equal(result.exitCode, 3, result.output);
          assert.deepEqual(asked, ["solve it (call 1)", "solve it (call 2)", "solve it (call 3)"]);
          assert.match(result.output, /reply 1: answer 1\nreply 2: answer 2\nreply 3: answer 3/);
          const lines = await sandbox.arun("wc -l < /data/logs/LLMTraj.jsonl");
          assert.equal(lines.output.trim(), "3", "the trajectory has three lines");
          await agent.stop();
        } finally {
          await cleanUp(sandbox, [agent.workingDir, agent.runtimeEnv?.workdir]);
        }
      },
    );
  }
}
