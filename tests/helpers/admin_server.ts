/** Starts an admin (app + manager + store + backend) on a loopback port for tests. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAdminApp, createAdminUpgrade } from "../../src/admin/app.ts";
import { listen } from "../../src/cli/serve.ts";
import { Billing } from "../../src/admin/billing.ts";
import type { Logger } from "../../src/common/log.ts";
import { type ManagerSettings, SandboxManager } from "../../src/admin/manager.ts";
import { type SandboxRecord, SandboxStore } from "../../src/admin/store.ts";
import { type PoolSpec, WarmPool } from "../../src/admin/warm_pool.ts";
import { Warmups } from "../../src/admin/warmup.ts";
import { Commits } from "../../src/admin/commits.ts";
import { type Backend, isRenamable } from "../../src/sandbox/backend.ts";
import { createBackend } from "../../src/sandbox/factory.ts";
import type { RockletLauncher } from "../../src/sandbox/rocklet_launcher.ts";
import { TEST_IMAGE, testRockletLauncher, testSandboxId } from "./docker.ts";
import { testKubeBackend, type TestKubeOptions } from "./kube/backend.ts";
import type { SandboxConfig } from "../../src/sdk/sandbox.ts";
import type { RockletDeadlines } from "../../src/sdk/rocklet_client.ts";

/** A running admin for tests; dispose stops it (sandboxes are the test's to stop). */
export interface AdminServer extends AsyncDisposable {
  url: string;
  /** The warm pool, when one was asked for. */
  pool?: WarmPool | undefined;
  api: string;
  manager: SandboxManager;
  store: SandboxStore;
  backend: Backend;
  dataDir: string;
}

/** Which backend a test admin uses (kubernetes: on a stand-in API server). */
export type TestBackend = "local" | "docker" | "kubernetes";

/**
 * Creates the backend of kind `type` with its data under `dataDir`, for deployment
 * `deploymentId`, starting rocklets with `launcher` (default: the tests' own).
 */
export async function testBackend(
  type: TestBackend,
  dataDir: string,
  options: {
    deploymentId?: string | undefined;
    launcher?: RockletLauncher | undefined;
    kube?: TestKubeOptions | undefined;
  } = {},
): Promise<Backend> {
  const { deploymentId } = options;
  const launcher = options.launcher ?? await testRockletLauncher();
  if (type === "kubernetes") {
    return await testKubeBackend({ ...options.kube, deploymentId, launcher });
  }
  const { backend } = await createBackend(
    type === "docker"
      ? { type: "docker", launcher, deploymentId }
      : { type: "local", workRoot: join(dataDir, "sandboxes"), launcher },
  );
  return backend;
}

/** How a test admin differs from the default one. */
export interface TestAdminOptions {
  /** Data dir to use (and keep); default a fresh temp dir, removed at the end. */
  dataDir?: string;
  startupTimeoutMs?: number;
  maxBatch?: number;
  pool?: PoolSpec[];
  /** The manager's clock in epoch ms (default Date.now), for expiry without waiting. */
  now?: () => number;
  /** Run the expiry sweeper at this interval, in ms (default: no sweeper). */
  sweepIntervalMs?: number;
  /** How long before expiry the `expiring` event goes out, in ms (default: the admin's). */
  expiryWarningMs?: number;
  /** How sandboxes' rocklets start (default: the tests' launcher). */
  launcher?: RockletLauncher;
  /** The image GEM sandboxes start from (default: the default image). */
  gemImage?: string;
  /** Bounds on the manager's calls to rocklets (default: the admin's). */
  rockletDeadlines?: Partial<RockletDeadlines>;
  /**
   * Whether the manager follows the backend's reports of deaths (default true); without, it
   * learns of one only when a call cannot reach the rocklet.
   */
  watch?: boolean;
  /** Most placements at once (default: the admin's default). */
  startConcurrency?: number;
  /** Most starts waiting (default 1000). */
  startQueueLimit?: number;
  /** The kubernetes backend's access mode and stand-in (default: pod IP, a new stand-in). */
  kube?: TestKubeOptions;
  /** Wraps the test backend (to slow its placements down, say). */
  wrapBackend?: (backend: Backend) => Backend;
  /** The admin's logger (default: none). */
  logger?: Logger;
  /**
   * Serve as `rock admin start` does, on node:http with WebSocket upgrades relayed (default:
   * Deno.serve, which has no upgrades).
   */
  node?: boolean;
}

/** Starts an admin on 127.0.0.1:0 over a fresh (or the given) data dir. */
export async function startAdminServer(
  type: TestBackend,
  options: TestAdminOptions = {},
): Promise<AdminServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "rock-admin-test-" });
  const store = await SandboxStore.open(`file:${join(dataDir, "rock.db")}`);
  const real = await testBackend(type, dataDir, {
    deploymentId: await store.deploymentId(),
    launcher: options.launcher,
    kube: options.kube,
  });
  const backend = options.wrapBackend?.(real) ?? real;
  const pool = options.pool && isRenamable(backend)
    ? new WarmPool({ backend, specs: options.pool, startupTimeoutMs: 60_000, retryDelayMs: 1000 })
    : undefined;
  const manager = new SandboxManager({
    store,
    backend,
    pool,
    billing: new Billing(store.billing, join(dataDir, "billing.log")),
    now: options.now,
    settings: {
      maxCpus: 16,
      maxMemoryBytes: 64 * 1024 ** 3,
      defaultImage: TEST_IMAGE,
      defaultAutoClearMinutes: 30,
      startupTimeoutMs: options.startupTimeoutMs ?? 60_000,
      timeZone: "Asia/Shanghai",
      touchIntervalMs: 1000,
      rockletDeadlines: options.rockletDeadlines,
      startConcurrency: options.startConcurrency,
      startQueueLimit: options.startQueueLimit,
      expiryWarningMs: options.expiryWarningMs,
    },
  });
  await manager.reconcile();
  if (options.watch ?? true) manager.startWatching();
  if (options.sweepIntervalMs !== undefined) manager.startSweeper(options.sweepIntervalMs);
  pool?.fill();
  const warmups = new Warmups(backend);
  const commits = new Commits(backend, { timeZone: "Asia/Shanghai" });
  const app = createAdminApp({
    manager,
    timeZone: "Asia/Shanghai",
    maxBatch: options.maxBatch,
    gemImage: options.gemImage,
    warmups,
    commits,
    logger: options.logger,
  });
  const server = options.node
    ? await listen(
      { hostname: "127.0.0.1", port: 0, upgrade: createAdminUpgrade(manager) },
      app.fetch,
    )
    : Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    api: `${url}/apis/envs/sandbox/v1`,
    pool,
    manager,
    store,
    backend,
    dataDir,
    async [Symbol.asyncDispose]() {
      // Event streams end first: a server waits for the responses it is still sending.
      manager.events.close();
      await server.shutdown();
      await warmups.close();
      await commits.close();
      await manager.close();
      // The kubernetes backend's watch and proxy (and its own stand-in).
      if (Symbol.asyncDispose in real) await (real as AsyncDisposable)[Symbol.asyncDispose]();
      store.close();
      // The local backend keeps its sandboxes' work dirs in here; the test stopped them.
      if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** POSTs JSON to the admin API and returns the envelope. */
export async function post(api: string, path: string, body: unknown): Promise<Envelope> {
  const response = await fetch(`${api}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status} from ${path}: ${await response.text()}`);
  }
  return await response.json();
}

/** GETs from the admin API and returns the envelope. */
export async function get(api: string, path: string): Promise<Envelope> {
  const response = await fetch(`${api}${path}`);
  if (response.status !== 200) {
    throw new Error(`HTTP ${response.status} from ${path}: ${await response.text()}`);
  }
  return await response.json();
}

/** ROCK's envelope, loosely typed for assertions. */
// deno-lint-ignore no-explicit-any
export type Envelope = { status: string; message: string; error: string | null; result: any };

/** Polls get_status until the sandbox runs (or fails), bounded. */
export async function waitRunning(api: string, id: string, timeoutMs = 60_000): Promise<Envelope> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  while (true) {
    const status = await get(api, `/get_status?sandbox_id=${id}`);
    // A failed sandbox is "stopped" in ROCK's words; rock_state says failed.
    if (status.result?.state === "running" || status.result?.rock_state === "failed") return status;
    if (Date.now() > deadline) {
      throw new Error(`sandbox ${id} not running after ${timeoutMs} ms: ${JSON.stringify(status)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 200);
  }
}

/**
 * Starts sandbox `rock-test-<label>-...` through the API (test image, 1 cpu, 1g, `extra` over
 * that) and waits until it runs; returns its id.
 */
export async function startSandbox(
  admin: Pick<AdminServer, "api">,
  label: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const id = testSandboxId(label);
  const started = await post(admin.api, "/start_async", {
    sandbox_id: id,
    image: TEST_IMAGE,
    pull: "never",
    memory: "1g",
    cpus: 1,
    ...extra,
  });
  assert.equal(started.status, "Success", JSON.stringify(started));
  const status = await waitRunning(admin.api, id);
  assert.equal(status.result.state, "running", JSON.stringify(status));
  return id;
}

/**
 * Waits (bounded) until the store holds `id` in `state`. It reads the store, not get_status, so
 * it keeps nothing alive.
 */
export async function waitStoredState(
  admin: AdminServer,
  id: string,
  state: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await admin.store.sandboxes.get(id))?.state !== state) {
    if (Date.now() > deadline) throw new Error(`sandbox ${id} never became ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A launcher whose "rocklet" is `sleep 60`: it never answers, so a start on the local backend
 * fails when the startup timeout passes.
 */
export async function silentRockletLauncher(): Promise<RockletLauncher> {
  return { ...await testRockletLauncher(), hostCommand: () => ["sleep", "60"] };
}

/** A manager on the local backend over a fresh temp dir, with a clock tests can move. */
export interface ManagerFixture extends AsyncDisposable {
  dir: string;
  manager: SandboxManager;
  store: SandboxStore;
  backend: Backend;
  /** Moves the manager's clock forward. */
  advance(minutes: number): void;
}

/** Creates a ManagerFixture (no HTTP server); `settings` over the fixture's own. */
export async function managerFixture(
  prefix = "rock-manager-test-",
  settings: Partial<ManagerSettings> = {},
): Promise<ManagerFixture> {
  const dir = await Deno.makeTempDir({ prefix });
  const store = await SandboxStore.open(`file:${join(dir, "rock.db")}`);
  const backend = await testBackend("local", dir);
  let now = Date.parse("2026-01-21T11:38:00Z");
  const manager = new SandboxManager({
    store,
    backend,
    billing: new Billing(store.billing, join(dir, "billing.log")),
    now: () => now,
    settings: {
      maxCpus: 16,
      maxMemoryBytes: 64 * 1024 ** 3,
      defaultImage: "none",
      defaultAutoClearMinutes: 30,
      startupTimeoutMs: 30_000,
      timeZone: "Asia/Shanghai",
      touchIntervalMs: 0,
      ...settings,
    },
  });
  return {
    dir,
    manager,
    store,
    backend,
    advance: (minutes: number) => void (now += minutes * 60_000),
    async [Symbol.asyncDispose]() {
      await manager.close();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A stored sandbox row for tests that write the store directly: running, unplaced, `patch` over it. */
export function testRecord(id: string, patch: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    sandbox_id: id,
    state: "running",
    user_id: "default",
    experiment_id: "default",
    namespace: "default",
    cluster_name: "default",
    image: TEST_IMAGE,
    backend: "local",
    handle: null,
    host_ip: null,
    host_name: null,
    port_mapping: {},
    phases: {},
    cpus: 1,
    memory: "1g",
    auto_clear_minutes: 5,
    expire_at: 0,
    create_time: 0,
    start_time: null,
    stop_time: null,
    stop_reason: null,
    failure_reason: null,
    ...patch,
  };
}

/** A Sandbox config for tests on `admin`: the test image, small limits, a `rock-test-` id. */
export function testSandboxConfig(
  admin: AdminServer,
  label: string,
  extra: SandboxConfig = {},
): SandboxConfig {
  return {
    baseUrl: admin.url,
    image: TEST_IMAGE,
    pull: "never",
    memory: "1g",
    cpus: 1,
    sandboxId: testSandboxId(label),
    startupTimeout: 60,
    ...extra,
  };
}
