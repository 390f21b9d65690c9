/**
 * `rock admin start|stop`: serves the admin in the foreground until SIGINT/SIGTERM (sandboxes
 * keep running), or detached with --daemon; `stop` stops the admin of a data dir.
 */
import { dirname, join } from "node:path";
import { loadTask, Scheduler } from "../admin/scheduler/scheduler.ts";
import { fileURLToPath } from "node:url";
import { createAdminApp } from "../admin/app.ts";
import { Billing } from "../admin/billing.ts";
import { type AdminConfig, type AdminFlags, loadAdminConfig } from "../admin/config.ts";
import { SandboxManager } from "../admin/manager.ts";
import { SandboxStore } from "../admin/store.ts";
import { processEnvironment, readCommonSettings } from "../common/config.ts";
import { ConfigError, RockError } from "../common/errors.ts";
import { createLogger, type Logger } from "../common/log.ts";
import { memoryBytes } from "../protocol/admin.ts";
import { type Backend, isRenamable } from "../sandbox/backend.ts";
import { WarmPool } from "../admin/warm_pool.ts";
import { DockerBackend } from "../sandbox/docker_backend.ts";
import { DockerCli } from "../sandbox/docker_cli.ts";
import { LocalBackend } from "../sandbox/local_backend.ts";
import { prepareRockletLauncher } from "../sandbox/rocklet_launcher.ts";
import { spawnDetached } from "../common/detached.ts";
import { serveUntilSignal } from "./serve.ts";

/** Options of `rock admin start`. */
export interface AdminStartOptions extends AdminFlags {
  daemon?: boolean;
}

/** The pid file of the admin serving `dataDir`. */
function pidFile(dataDir: string): string {
  return join(dataDir, "admin.pid");
}

/** Picks the backend: docker when asked, or when `auto` and an engine answers; else local. */
async function chooseBackend(
  config: AdminConfig,
  deploymentId: string,
  logger: Logger,
): Promise<Backend> {
  const launcher = await prepareRockletLauncher({ cacheDir: join(config.dataDir, "cache") });
  if (config.backend !== "local") {
    const docker = new DockerCli({ binary: config.dockerBinary });
    if (await docker.available()) {
      return new DockerBackend({
        type: "docker",
        launcher,
        dockerBinary: config.dockerBinary,
        extraRunArgs: config.dockerExtraRunArgs,
        deploymentId,
      });
    }
    if (config.backend === "docker") {
      throw new ConfigError(
        `Cannot use the docker backend: "${config.dockerBinary} info" does not answer`,
      );
    }
    logger.info("No docker engine answers: using the local backend");
  }
  return new LocalBackend({ type: "local", workRoot: join(config.dataDir, "sandboxes"), launcher });
}

/** Runs the admin in the foreground; resolves after a clean shutdown. */
export async function runAdmin(options: AdminStartOptions): Promise<void> {
  const env = processEnvironment();
  const config = await loadAdminConfig(options, env);
  if (options.daemon) return await startDaemon(config);
  const settings = readCommonSettings(env);
  const logger = createLogger("admin", { level: settings.logLevel, timeZone: config.timeZone });
  await Deno.mkdir(config.dataDir, { recursive: true });
  const store = await SandboxStore.open(config.dbUrl, config.dbAuthToken);
  const backend = await chooseBackend(config, await store.deploymentId(), logger);
  const pool = config.warmPool.length > 0 && isRenamable(backend)
    ? new WarmPool({
      backend,
      specs: config.warmPool,
      startupTimeoutMs: config.startupTimeoutSeconds * 1000,
      logger,
    })
    : undefined;
  const manager = new SandboxManager({
    store,
    backend,
    pool,
    billing: new Billing(store, join(config.dataDir, "billing.log")),
    logger,
    settings: {
      maxCpus: config.maxCpus,
      maxMemoryBytes: memoryBytes(config.maxMemory),
      defaultImage: config.defaultImage,
      defaultAutoClearMinutes: config.defaultAutoClearMinutes,
      startupTimeoutMs: config.startupTimeoutSeconds * 1000,
      timeZone: config.timeZone,
      touchIntervalMs: 5000,
    },
  });
  await manager.reconcile();
  pool?.fill();
  const scheduler = config.scheduler.enabled
    ? new Scheduler(
      await Promise.all(config.scheduler.tasks.map(async (task) => ({
        task: await loadTask(task, config.configFile ? dirname(config.configFile) : Deno.cwd()),
        taskClass: task.task_class,
      }))),
      { manager, store, backend, dataDir: config.dataDir },
      createLogger("scheduler", { level: settings.logLevel, timeZone: config.timeZone }),
    )
    : undefined;
  await scheduler?.start();
  manager.startSweeper(config.sweepIntervalSeconds * 1000);
  const app = createAdminApp({
    scheduler,
    manager,
    timeZone: config.timeZone,
    maxBatch: config.maxBatch,
    logger,
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => {
      console.log(
        `admin listening on http://${hostname}:${port} (backend ${backend.type}, data ${config.dataDir})`,
      );
    },
  }, app.fetch);
  await Deno.writeTextFile(
    pidFile(config.dataDir),
    JSON.stringify({ pid: Deno.pid, host: config.host, port: server.addr.port }),
  );
  await serveUntilSignal(
    server,
    (signal) => logger.info("Stopping; sandboxes keep running", { signal }),
  );
  await scheduler?.close();
  await manager.close();
  store.close();
  await Deno.remove(pidFile(config.dataDir)).catch(() => {});
}

/** argv that runs this same program again (compiled, bundle or source). */
function selfCommand(): string[] {
  if (Deno.build.standalone) return [Deno.execPath()];
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--unstable-no-legacy-abort",
    fileURLToPath(Deno.mainModule),
  ];
}

/** Starts the admin detached, waits until it serves, prints where, and returns. */
async function startDaemon(config: AdminConfig): Promise<void> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const running = await readPid(config.dataDir);
  if (running && isAlive(running.pid)) {
    throw new RockError(
      `An admin already runs for "${config.dataDir}" (pid ${running.pid}); stop it first`,
    );
  }
  const args = Deno.args.filter((arg) => arg !== "--daemon");
  const log = join(config.dataDir, "admin.log");
  const child = spawnDetached([
    ...selfCommand(),
    ...args,
    "--data-dir",
    config.dataDir,
  ], log);
  const started = performance.now();
  let delay = 10;
  while (performance.now() - started < 60_000) {
    const state = await readPid(config.dataDir);
    if (state?.pid === child.pid || (state && isAlive(state.pid))) {
      console.log(
        `admin started (pid ${state.pid}) on http://${state.host}:${state.port}; log ${log}`,
      );
      return;
    }
    const status = await Promise.race([
      child.status,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), delay)),
    ]);
    if (status) {
      const tail = (await Deno.readTextFile(log).catch(() => "")).trim().split("\n").slice(-5).join(
        "\n",
      );
      throw new RockError(`Cannot start the admin: it exited with code ${status.code}: ${tail}`);
    }
    delay = Math.min(delay * 2, 200);
  }
  throw new RockError(`Cannot start the admin: it did not serve within 60 s; see ${log}`);
}

async function readPid(
  dataDir: string,
): Promise<{ pid: number; host: string; port: number } | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(pidFile(dataDir)));
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** `rock admin stop`: SIGTERM to the admin of the data dir, SIGKILL after 10 s. */
export async function stopAdmin(
  options: { dataDir?: string; env?: string; config?: string },
): Promise<void> {
  const config = await loadAdminConfig(options, processEnvironment());
  const state = await readPid(config.dataDir);
  if (!state || !isAlive(state.pid)) {
    await Deno.remove(pidFile(config.dataDir)).catch(() => {});
    throw new RockError(`No admin runs for "${config.dataDir}"`);
  }
  Deno.kill(state.pid, "SIGTERM");
  for (let waited = 0; waited < 10_000; waited += 50) {
    if (!isAlive(state.pid)) {
      console.log(`admin stopped (pid ${state.pid})`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  Deno.kill(state.pid, "SIGKILL");
  await Deno.remove(pidFile(config.dataDir)).catch(() => {});
  console.log(`admin killed after 10 s (pid ${state.pid})`);
}
