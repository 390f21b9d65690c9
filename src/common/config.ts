/**
 * The one place that reads the process environment. Roles receive plain values from here.
 */
import { DEFAULT_TIME_ZONE, knownTimeZone } from "./time.ts";
import type { LogLevel } from "./log.ts";
import { ConfigError } from "./errors.ts";

/** Bounds on a server's connections, and how long a shutdown drains. */
export interface ServerLimits {
  /** Longest wait for a request's headers, in ms (ROCK_SERVER_HEADER_TIMEOUT_SECONDS). */
  headerTimeoutMs: number;
  /** Longest idle gap between keep-alive requests, in ms (ROCK_SERVER_IDLE_TIMEOUT_SECONDS). */
  idleTimeoutMs: number;
  /** Longest time to receive a whole request, body included, in ms (ROCK_SERVER_BODY_TIMEOUT_SECONDS). */
  bodyTimeoutMs: number;
  /** Most connections open at once; more are refused (ROCK_SERVER_MAX_CONNECTIONS). */
  maxConnections: number;
  /** How long a shutdown waits for calls in flight, in ms (ROCK_SERVER_SHUTDOWN_GRACE_SECONDS). */
  shutdownGraceMs: number;
}

/** Bounds every role's server uses unless configured otherwise. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headerTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
  bodyTimeoutMs: 600_000,
  maxConnections: 10_000,
  shutdownGraceMs: 10_000,
};

/** The ROCK_SERVER_* variables of ServerLimits, by field; seconds except the connection cap. */
const SERVER_LIMIT_VARIABLES: Record<keyof ServerLimits, string> = {
  headerTimeoutMs: "ROCK_SERVER_HEADER_TIMEOUT_SECONDS",
  idleTimeoutMs: "ROCK_SERVER_IDLE_TIMEOUT_SECONDS",
  bodyTimeoutMs: "ROCK_SERVER_BODY_TIMEOUT_SECONDS",
  maxConnections: "ROCK_SERVER_MAX_CONNECTIONS",
  shutdownGraceMs: "ROCK_SERVER_SHUTDOWN_GRACE_SECONDS",
};

/**
 * `base` with the ROCK_SERVER_* variables set in `env` applied.
 * @throws {ConfigError} for a value that is not a positive number (or, for the cap, an integer).
 */
export function readServerLimits(
  base: ServerLimits,
  env: Record<string, string> = Deno.env.toObject(),
): ServerLimits {
  const limits = { ...base };
  for (const [field, name] of Object.entries(SERVER_LIMIT_VARIABLES)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    const isCap = field === "maxConnections";
    if (!(value > 0) || (isCap && !Number.isInteger(value))) {
      throw new ConfigError(
        `Invalid ${name} "${raw}": expected a positive ${isCap ? "integer" : "number of seconds"}`,
      );
    }
    limits[field as keyof ServerLimits] = isCap ? value : Math.round(value * 1000);
  }
  return limits;
}

/** Settings every role shares, from ROCK_* variables. */
export interface CommonSettings {
  /** ROCK_TIME_ZONE: time zone of timestamps (default Asia/Shanghai). */
  timeZone: string;
  /** ROCK_LOGGING_LEVEL: lowest level logged (default info). */
  logLevel: LogLevel;
}

/** Reads the shared settings; an unknown time zone or level falls back to the default. */
export function readCommonSettings(
  env: Record<string, string> = Deno.env.toObject(),
): CommonSettings {
  const settings = readLogSettings(env);
  return { ...settings, timeZone: knownTimeZone(settings.timeZone) };
}

/**
 * As readCommonSettings, but the time zone is not checked yet: for a logger, which checks it
 * when it first writes (see createLogger), so a rocklet starts without loading ICU's data.
 */
export function readLogSettings(
  env: Record<string, string> = Deno.env.toObject(),
): CommonSettings {
  const level = (env.ROCK_LOGGING_LEVEL ?? "info").toLowerCase();
  const logLevel: LogLevel = level === "debug" || level === "warn" || level === "error"
    ? level
    : "info";
  return { timeZone: env.ROCK_TIME_ZONE || DEFAULT_TIME_ZONE, logLevel };
}

/** The environment as a plain object (for sessions started with `env_enable`). */
export function processEnvironment(): Record<string, string> {
  return Deno.env.toObject();
}
