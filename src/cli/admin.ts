/**
 * `rock admin start|stop`: serves the admin in the foreground until SIGINT/SIGTERM (sandboxes
 * keep running), or detached with --daemon; `stop` stops the admin of a data dir.
 */
import { dirname, join } from "node:path";
import { loadTask, Scheduler } from "../admin/scheduler/scheduler.ts";
import { createAdminApp, createAdminUpgrade, shutdownResponse } from "../admin/app.ts";
import { Billing } from "../admin/billing.ts";
import {
  type AdminConfig,
  type AdminFlags,
  backendConfigOf,
  loadAdminConfig,
} from "../admin/config.ts";
import { Leadership, thisAdmin } from "../admin/leadership.ts";
import { admissionFor, SandboxManager } from "../admin/manager.ts";
import { SandboxStore } from "../admin/store.ts";
import { processEnvironment, readCommonSettings } from "../common/config.ts";
import { RockError } from "../common/errors.ts";
import { createLogger } from "../common/log.ts";
import { memoryBytes } from "../protocol/admin.ts";
import { isRenamable } from "../sandbox/backend.ts";
import { WarmPool } from "../admin/warm_pool.ts";
import { DockerCli } from "../sandbox/docker_cli.ts";
import { createBackend } from "../sandbox/factory.ts";
import { Warmups } from "../admin/warmup.ts";
import { Commits } from "../admin/commits.ts";
import { prepareRockletLauncher } from "../sandbox/rocklet_launcher.ts";
import { listen } from "./serve.ts";
import { type RockServer, serveUntilSignal, type UpgradeHandler } from "./server.ts";
import { claimStateFile, liveStateFile } from "../common/state_file.ts";
import { connectHost, type ServerState, startDaemon } from "./daemon.ts";
import { waitForExit } from "../common/process_state.ts";

/** Options of `rock admin start`. */
export interface AdminStartOptions extends AdminFlags {
  daemon?: boolean;
}

/** The pid file of the admin serving `dataDir`. */
function pidFile(dataDir: string): string {
  return join(dataDir, "admin.pid");
}

/** What the admin's state file (`<data-dir>/admin.pid`) holds. */
type AdminState = ServerState;

/** The error for a start on a data dir another admin serves (`owner` undefined: starting). */
function alreadyServed(dataDir: string, owner: AdminState | undefined): RockError {
  const who = owner === undefined
    ? "is starting"
    : owner.port === null
    ? `(pid ${owner.pid}) is starting`
    : `(pid ${owner.pid}) serves it on http://${connectHost(owner.host)}:${owner.port}`;
  return new RockError(
    `Cannot start the admin: another admin ${who} for data dir "${dataDir}"; stop it first with "rock admin stop"`,
  );
}

/**
 * Runs the admin in the foreground; resolves after a clean shutdown.
 * @throws {RockError} when another admin serves the data dir or the address cannot be bound.
 */
export async function runAdmin(options: AdminStartOptions): Promise<void> {
  const env = processEnvironment();
  const config = await loadAdminConfig(options, env);
  if (options.daemon) return await startAdminDaemon(config);
  const settings = readCommonSettings(env);
  const logger = createLogger("admin", { level: settings.logLevel, timeZone: config.timeZone });
  // Before anything touches the data dir: one admin per data dir.
  const claim = await claimStateFile<AdminState>(
    pidFile(config.dataDir),
    { host: config.host, port: null },
    (owner) => alreadyServed(config.dataDir, owner),
  );
  // Bind early, so a busy port fails before sandboxes are reconciled or pooled; requests wait
  // until the admin is ready.
  const app = Promise.withResolvers<(request: Request) => Response | Promise<Response>>();
  app.promise.catch(() => {});
  const upgrade = Promise.withResolvers<UpgradeHandler>();
  upgrade.promise.catch(() => {});
  let server: RockServer;
  try {
    server = await listen(
      {
        hostname: config.host,
        port: config.port,
        limits: config.server,
        shutdownResponse: () => shutdownResponse(config.server.shutdownGraceMs),
        upgrade: async (request) => await (await upgrade.promise)(request),
      },
      async (request) => (await app.promise)(request),
    );
  } catch (error) {
    await claim.release();
    throw error;
  }
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const store = await SandboxStore.open(config.dbUrl, config.dbAuthToken);
    cleanups.unshift(() => store.close());
    const launcher = await prepareRockletLauncher({ cacheDir: join(config.dataDir, "cache") });
    const { backend, docker, fallback } = await createBackend(
      backendConfigOf(config, { launcher, deploymentId: await store.deploymentId() }),
      { logger },
    );
    // A backend that runs processes of its own (the kubernetes watch and proxy) ends them last.
    if (Symbol.asyncDispose in backend) {
      const disposable = backend as AsyncDisposable;
      cleanups.unshift(async () => await disposable[Symbol.asyncDispose]());
    }
    // This admin among those sharing the database (see Leadership).
    const self = await thisAdmin();
    // One set of placement slots for starts and warm-pool refills (refills take spare ones).
    const admission = admissionFor(config);
    const pool = config.warmPool.length > 0 && isRenamable(backend)
      ? new WarmPool({
        backend,
        specs: config.warmPool,
        startupTimeoutMs: config.startupTimeoutSeconds * 1000,
        logger,
        admission,
        adminId: self.id,
      })
      : undefined;
    // Admins sharing the database: rows and pooled sandboxes of live ones are theirs.
    // Set once the leases start (they need the manager, which needs this).
    const leadership: { current?: Leadership } = {};
    const isAdminAlive = (adminId: string) =>
      leadership.current?.isAlive(adminId) ?? Promise.resolve(false);
    const manager = new SandboxManager({
      store,
      backend,
      pool,
      admission,
      billing: new Billing(store.billing, join(config.dataDir, "billing.log")),
      logger,
      settings: {
        maxCpus: config.maxCpus,
        maxMemoryBytes: memoryBytes(config.maxMemory),
        defaultImage: config.defaultImage,
        defaultAutoClearMinutes: config.defaultAutoClearMinutes,
        startupTimeoutMs: config.startupTimeoutSeconds * 1000,
        queueTimeoutMs: config.queueTimeoutSeconds * 1000,
        timeZone: config.timeZone,
        touchIntervalMs: 5000,
        expiryWarningMs: config.expiryWarningSeconds * 1000,
      },
      adminId: self.id,
      isAdminAlive,
    });
    cleanups.unshift(() => manager.close());
    const warmups = new Warmups(backend, { logger });
    cleanups.unshift(() => warmups.close());
    const commits = new Commits(backend, { logger, timeZone: config.timeZone });
    cleanups.unshift(() => commits.close());
    // Loaded at start, so a bad task fails the start; run by the leader only.
    const tasks = config.scheduler.enabled
      ? await Promise.all(config.scheduler.tasks.map(async (task) => ({
        task: await loadTask(task, config.configFile ? dirname(config.configFile) : Deno.cwd()),
        taskClass: task.task_class,
      })))
      : undefined;
    let scheduler: Scheduler | undefined;
    // The leader's duties: removal of sandboxes no live admin owns, expiry, scheduled tasks.
    const lead = async (leader: boolean) => {
      if (!leader) {
        await manager.stopSweeper();
        await scheduler?.close();
        scheduler = undefined;
        return;
      }
      await manager.reconcile({ orphans: true });
      manager.startSweeper(config.sweepIntervalSeconds * 1000);
      if (!tasks) return;
      scheduler = new Scheduler(
        tasks,
        {
          manager,
          store,
          backend,
          // Image clean-up may run beside the local backend too: the configured docker then.
          docker: docker ?? new DockerCli({ binary: config.dockerBinary }),
          dataDir: config.dataDir,
        },
        createLogger("scheduler", { level: settings.logLevel, timeZone: config.timeZone }),
      );
      await scheduler.start();
    };
    const leases = new Leadership({
      leases: store.leases,
      self,
      ttlMs: config.leaseSeconds * 1000,
      onChange: lead,
      logger,
    });
    leadership.current = leases;
    await leases.start();
    // Before the manager's close: the duties stop and the leases go at once on shutdown.
    cleanups.unshift(() => leases.close());
    // A follower reconciles only what gone admins left; the leader did all of it in lead().
    if (!leases.isLeader) await manager.reconcile({ orphans: false });
    await leases.settled();
    manager.startWatching();
    pool?.fill();
    app.resolve(
      createAdminApp({
        scheduler: tasks ? store.schedulerRuns : undefined,
        leadership: leases,
        manager,
        timeZone: config.timeZone,
        maxBatch: config.maxBatch,
        gemImage: config.gemImage,
        warmups,
        commits,
        logger,
      }).fetch,
    );
    upgrade.resolve(createAdminUpgrade(manager));
    await claim.update({ port: server.addr.port });
    console.log(
      `admin listening on http://${server.addr.hostname}:${server.addr.port} ` +
        `(backend ${backend.type}${
          fallback ? ", fallback: no docker engine, no isolation" : ""
        }, data ${config.dataDir})`,
    );
    await serveUntilSignal(
      server,
      (signal) => {
        logger.info("Stopping; sandboxes keep running", { signal });
        // Event streams never finish on their own: they end now, not at the grace's end.
        manager.events.close();
      },
    );
  } catch (error) {
    app.reject(error);
    upgrade.reject(error);
    await server.shutdown();
    throw error;
  } finally {
    for (const cleanup of cleanups) await cleanup();
    await claim.release();
  }
}

/** Starts the admin detached, waits until it serves, prints where, and returns. */
async function startAdminDaemon(config: AdminConfig): Promise<void> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const running = await liveStateFile<AdminState>(pidFile(config.dataDir));
  if (running) throw alreadyServed(config.dataDir, running);
  const logFile = join(config.dataDir, "admin.log");
  const { pid, url } = await startDaemon<AdminState>({
    args: [...Deno.args.filter((arg) => arg !== "--daemon"), "--data-dir", config.dataDir],
    logFile,
    statePath: pidFile(config.dataDir),
    what: "the admin",
    timeoutMs: 60_000,
  });
  console.log(`admin started (pid ${pid}) on ${url}; log ${logFile}`);
}

/** `rock admin stop`: SIGTERM to the admin of the data dir, SIGKILL after 10 s. */
export async function stopAdmin(
  options: { dataDir?: string; env?: string; config?: string },
): Promise<void> {
  const config = await loadAdminConfig(options, processEnvironment());
  const state = await liveStateFile<AdminState>(pidFile(config.dataDir));
  if (!state) throw new RockError(`No admin runs for "${config.dataDir}"`);
  Deno.kill(state.pid, "SIGTERM");
  if (await waitForExit(state.pid, state.start_ticks, 10_000)) {
    console.log(`admin stopped (pid ${state.pid})`);
    return;
  }
  Deno.kill(state.pid, "SIGKILL");
  console.log(`admin killed after 10 s (pid ${state.pid})`);
}
