/**
 * `rock model-service start|stop|watch-agent|anti-call-llm`. `start` runs the server detached,
 * waits for its `/health`, and returns (`--foreground` serves in place); the serving process owns
 * the state file in the state dir. `anti-call-llm` prints only the next request or SESSION_END.
 */
import { dirname, resolve } from "node:path";
import {
  DEFAULT_SERVER_LIMITS,
  processEnvironment,
  readCommonSettings,
  readServerLimits,
} from "../common/config.ts";
import { BadRequestError, ConfigError, errorMessage, RockError } from "../common/errors.ts";
import { createLogger } from "../common/log.ts";
import { createModelServiceApp } from "../model_service/app.ts";
import { antiCallLlm, checkAntiCall } from "../model_service/client.ts";
import { prepareResponse } from "../formats/file_protocol.ts";
import {
  exchangeFilePath,
  loadModelServiceConfig,
  type ModelServiceConfig,
  type ModelServiceFlags,
  type ModelServiceSettings,
  readModelServiceSettings,
  trajectoryFilePath,
} from "../model_service/config.ts";
import { LocalExchange } from "../model_service/local_exchange.ts";
import { waitForExit } from "../common/process_state.ts";
import { LlmProxy } from "../model_service/proxy.ts";
import { TrajectoryWriter } from "../model_service/traj.ts";
import {
  alreadyRunning,
  claimState,
  type ModelServiceState,
  removeState,
  runningState,
  stateFilePath,
} from "./model_service_state.ts";
import { connectHost, startDaemon } from "./daemon.ts";
import { listen } from "./serve.ts";
import { type RockServer, serveUntilSignal } from "./server.ts";

/** Options of `rock model-service start`. */
export interface ModelServiceStartOptions extends ModelServiceFlags {
  type: "local" | "proxy";
  /** Serve in this process instead of starting a background one. */
  foreground?: boolean;
  /** Seconds a background start waits for `/health` (default 30, as ROCK). */
  startupTimeout?: number;
}

/** Starts the model service: in the background (default) or in this process. */
export async function startModelService(options: ModelServiceStartOptions): Promise<void> {
  const env = processEnvironment();
  const settings = readModelServiceSettings(env);
  const config = await loadModelServiceConfig(options);
  if (options.foreground) return await serveForeground(options.type, config, settings);
  await startBackground(options, settings);
}

async function serveForeground(
  type: "local" | "proxy",
  config: ModelServiceConfig,
  settings: ModelServiceSettings,
): Promise<void> {
  const common = readCommonSettings(processEnvironment());
  const logger = createLogger("model-service", {
    level: common.logLevel,
    timeZone: common.timeZone,
  });
  const claim = await claimState(settings.stateDir, {
    type,
    host: config.host,
    port: null,
    log: settings.logFile,
  });
  try {
    const trajectory = new TrajectoryWriter(trajectoryFilePath(settings.dataDir), {
      append: settings.trajAppend,
      logger,
    });
    const exchange = type === "local"
      ? LocalExchange.open({ exchangeFile: exchangeFilePath(settings.dataDir), logger })
      : undefined;
    const proxy = type === "proxy" ? new LlmProxy({ config, logger }) : undefined;
    const app = createModelServiceApp(
      exchange ? { type: "local", exchange, trajectory, logger } : {
        type: "proxy",
        proxy: proxy!,
        trajectory,
        logger,
      },
    );
    let server: RockServer;
    try {
      server = await listen({
        hostname: config.host,
        port: config.port,
        onListen: ({ hostname, port }) => {
          console.log(`model service (${type}) listening on http://${hostname}:${port}`);
        },
        limits: readServerLimits(DEFAULT_SERVER_LIMITS),
      }, app.fetch);
    } catch (error) {
      proxy?.close();
      await exchange?.close();
      await trajectory.close();
      throw error;
    }
    await claim.update({ port: server.addr.port });
    logger.info("Serving", { type, data_dir: settings.dataDir, port: server.addr.port });
    await serveUntilSignal(server, async (signal) => {
      logger.info("Stopping", { signal });
      // Waiting calls would hold the graceful shutdown forever: end them first.
      proxy?.close();
      await exchange?.close();
    });
    trajectory.close();
  } finally {
    await claim.release();
  }
}

function foregroundArgs(options: ModelServiceStartOptions): string[] {
  const args = ["model-service", "start", "--foreground", "--type", options.type];
  if (options.configFile) args.push("--config-file", resolve(options.configFile));
  if (options.host !== undefined) args.push("--host", options.host);
  if (options.port !== undefined) args.push("--port", String(options.port));
  if (options.proxyBaseUrl !== undefined) args.push("--proxy-base-url", options.proxyBaseUrl);
  if (options.retryableStatusCodes !== undefined) {
    args.push("--retryable-status-codes", options.retryableStatusCodes.join(","));
  }
  if (options.requestTimeout !== undefined) {
    args.push("--request-timeout", String(options.requestTimeout));
  }
  return args;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

async function startBackground(
  options: ModelServiceStartOptions,
  settings: ModelServiceSettings,
): Promise<void> {
  const running = await runningState(settings.stateDir);
  if (running) throw alreadyRunning(running);
  await Deno.mkdir(dirname(settings.logFile), { recursive: true });
  const { pid, url } = await startDaemon<ModelServiceState>({
    args: foregroundArgs(options),
    logFile: settings.logFile,
    statePath: stateFilePath(settings.stateDir),
    what: "the model service",
    timeoutMs: (options.startupTimeout ?? 30) * 1000,
    ready: healthy,
  });
  console.log(
    `model service started (pid ${pid}, ${options.type}) on ${url}; log ${settings.logFile}`,
  );
}

/** `rock model-service stop`: SIGTERM, SIGKILL after 5 s; nothing running is not an error. */
export async function stopModelService(): Promise<void> {
  const settings = readModelServiceSettings(processEnvironment());
  const state = await runningState(settings.stateDir);
  if (!state) {
    await removeState(settings.stateDir);
    console.log("model service is not running");
    return;
  }
  Deno.kill(state.pid, "SIGTERM");
  if (await waitForExit(state.pid, state.start_ticks, 5000)) {
    await removeState(settings.stateDir, state.pid);
    console.log(`model service stopped (pid ${state.pid})`);
    return;
  }
  Deno.kill(state.pid, "SIGKILL");
  await removeState(settings.stateDir, state.pid);
  console.log(`model service killed after 5 s (pid ${state.pid})`);
}

/** Options of `rock model-service watch-agent`. */
export interface WatchAgentOptions {
  pid: number;
  host?: string;
  port?: number;
}

/** Asks the running local service to end the session when process `pid` exits. */
export async function watchAgent(options: WatchAgentOptions): Promise<void> {
  const settings = readModelServiceSettings(processEnvironment());
  const state = options.host === undefined || options.port === undefined
    ? await runningState(settings.stateDir)
    : undefined;
  const host = connectHost(options.host ?? state?.host ?? "127.0.0.1");
  const port = options.port ?? state?.port ?? 8080;
  const url = `http://${host}:${port}/v1/agent/watch`;
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", body: JSON.stringify({ pid: options.pid }) });
  } catch (error) {
    throw new RockError(
      `Cannot watch agent ${options.pid}: no model service answers at ${url}: ${
        errorMessage(error)
      }`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new RockError(
      `Cannot watch agent ${options.pid}: ${url} answered ${response.status}: ${text}`,
    );
  }
  console.log(`watching agent pid ${options.pid} (${url})`);
}

/** Options of `rock model-service anti-call-llm`. */
export interface AntiCallLlmOptions {
  index: number;
  response?: string;
  responseFile?: string;
  /** Seconds to wait for the next request (default: no limit, as ROCK). */
  timeout?: number;
}

/** Answers call `index` (if > 0) and prints the next request's JSON or SESSION_END, nothing else. */
export async function antiCallLlmCommand(options: AntiCallLlmOptions): Promise<void> {
  const settings = readModelServiceSettings(processEnvironment());
  if (options.response !== undefined && options.responseFile !== undefined) {
    throw new ConfigError("Use --response or --response-file, not both");
  }
  let response = options.response;
  if (options.responseFile !== undefined) {
    try {
      response = await Deno.readTextFile(options.responseFile);
    } catch (error) {
      throw new ConfigError(
        `Cannot read --response-file "${options.responseFile}": ${errorMessage(error)}`,
      );
    }
  }
  try {
    checkAntiCall(options.index, response);
    if (response !== undefined) prepareResponse(options.index, response);
  } catch (error) {
    if (error instanceof BadRequestError) throw new ConfigError(error.message);
    throw error;
  }
  const abort = new AbortController();
  const timer = options.timeout === undefined
    ? undefined
    : setTimeout(() => abort.abort(), options.timeout * 1000);
  try {
    const next = await antiCallLlm(
      exchangeFilePath(settings.dataDir),
      options.index,
      response,
      { signal: abort.signal },
    );
    console.log(next);
  } catch (error) {
    if (abort.signal.aborted) {
      throw new RockError(
        `No request ${options.index + 1} within ${options.timeout} s in "${
          exchangeFilePath(settings.dataDir)
        }"`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
