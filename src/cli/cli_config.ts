/**
 * Where `rock sandbox` finds the admin: `--base-url` > $ROCK_BASE_URL > `[rock] base_url` in the
 * CLI config file > http://localhost:8080, and which headers it sends: `[rock.extra_headers]`
 * entries, overridden by `--extra-header K=V` flags. The config file is ROCK's
 * (`$ROCK_CLI_DEFAULT_CONFIG_PATH`, else `~/.rock/config.ini`); a missing file is fine.
 */
import { join } from "node:path";
import { ConfigError } from "../common/errors.ts";

/** The admin's default address when nothing says otherwise. */
export const DEFAULT_BASE_URL = "http://localhost:8080";

/** What the CLI talks to. */
export interface CliConnection {
  /** The admin's URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Headers sent with every request. */
  headers: Record<string, string>;
}

/** The global flags of `rock sandbox`. */
export interface ConnectionFlags {
  baseUrl?: string;
  /** `K=V` strings, already checked by the flag parser. */
  extraHeader?: string[];
}

/** An INI file: section name to its keys (lower-cased, as Python's configparser does). */
export type IniSections = Record<string, Record<string, string>>;

/**
 * Parses INI text: `[section]` lines, `key = value` (or `key: value`) lines, whole-line comments
 * starting with `#` or `;`, blank lines. Keys are lower-cased; values are trimmed, not unquoted.
 * @throws {ConfigError} naming the file and line of anything else.
 */
export function parseIni(text: string, file: string): IniSections {
  const sections: IniSections = {};
  let current: Record<string, string> | undefined;
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const where = `${file}:${index + 1}`;
    const section = /^\[([^\]]+)\]$/.exec(line)?.[1];
    if (section !== undefined) {
      current = sections[section.trim()] ??= {};
      continue;
    }
    const separator = line.search(/[=:]/);
    if (separator <= 0) {
      throw new ConfigError(
        `Cannot read config file ${where}: expected "key = value", got "${line}"`,
      );
    }
    if (!current) {
      throw new ConfigError(
        `Cannot read config file ${where}: "${line}" comes before any [section]`,
      );
    }
    current[line.slice(0, separator).trim().toLowerCase()] = line.slice(separator + 1).trim();
  }
  return sections;
}

/** Splits `K=V` into its parts, or returns undefined when there is no key or no `=`. */
export function splitKeyValue(text: string): [string, string] | undefined {
  const equals = text.indexOf("=");
  if (equals <= 0) return undefined;
  return [text.slice(0, equals).trim(), text.slice(equals + 1)];
}

/** Copies `headers` over `into`, replacing names that differ only in case. */
export function mergeHeaders(
  into: Record<string, string>,
  headers: Record<string, string>,
): Record<string, string> {
  const merged = { ...into };
  for (const [name, value] of Object.entries(headers)) {
    for (const existing of Object.keys(merged)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete merged[existing];
    }
    merged[name] = value;
  }
  return merged;
}

/** Path of the CLI config file given the environment. */
export function configPath(env: Record<string, string>): string {
  return env.ROCK_CLI_DEFAULT_CONFIG_PATH || join(env.HOME ?? ".", ".rock", "config.ini");
}

async function readIni(path: string): Promise<IniSections> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new ConfigError(`Cannot read config file ${path}: ${(error as Error).message}`);
  }
  return parseIni(text, path);
}

/**
 * Checks that `url` (taken from `source`) is an http(s) URL.
 * @throws {ConfigError} naming the URL, what it is for, and where it came from.
 */
export function checkHttpUrl(url: string, what: string, source: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new ConfigError(
      `Invalid ${what} URL "${url}" from ${source}: expected http(s)://HOST[:PORT]`,
    );
  }
}

/**
 * Resolves the admin URL and headers from the flags, the environment and the config file.
 * @throws {ConfigError} for an unreadable config file or a base URL that is not http(s).
 */
export async function resolveConnection(
  flags: ConnectionFlags,
  env: Record<string, string>,
): Promise<CliConnection> {
  const ini = await readIni(configPath(env));
  const fromFile = ini["rock"]?.["base_url"];
  const baseUrl = flags.baseUrl ?? (env.ROCK_BASE_URL || undefined) ?? (fromFile || undefined) ??
    DEFAULT_BASE_URL;
  const source = flags.baseUrl !== undefined
    ? "--base-url"
    : env.ROCK_BASE_URL
    ? "$ROCK_BASE_URL"
    : fromFile
    ? `${configPath(env)} [rock] base_url`
    : "the default";
  checkHttpUrl(baseUrl, "admin", source);
  let headers = { ...(ini["rock.extra_headers"] ?? {}) };
  for (const pair of flags.extraHeader ?? []) {
    const [name, value] = splitKeyValue(pair)!;
    headers = mergeHeaders(headers, { [name]: value });
  }
  return { baseUrl: baseUrl.replace(/\/+$/, ""), headers };
}
