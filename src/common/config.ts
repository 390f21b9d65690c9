/**
 * The one place that reads the process environment. Roles receive plain values from here.
 */
import { DEFAULT_TIME_ZONE } from "./time.ts";
import type { LogLevel } from "./log.ts";

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
  const zone = env.ROCK_TIME_ZONE || DEFAULT_TIME_ZONE;
  let timeZone = DEFAULT_TIME_ZONE;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    timeZone = zone;
  } catch {
    // Keep the default; the logger reports nothing about it to avoid noise in sandboxes.
  }
  const level = (env.ROCK_LOGGING_LEVEL ?? "info").toLowerCase();
  const logLevel: LogLevel = level === "debug" || level === "warn" || level === "error"
    ? level
    : "info";
  return { timeZone, logLevel };
}

/** The environment as a plain object (for sessions started with `env_enable`). */
export function processEnvironment(): Record<string, string> {
  return Deno.env.toObject();
}
