/**
 * `rock envhub register|get|ls|rm`: the registry's CLI over EnvHubClient. EnvHub's address is
 * `--base-url` > $ROCK_ENVHUB_BASE_URL > http://localhost:8081. Failures print one
 * `error: ...` line and exit 1 (unknown environment, unreachable EnvHub) or 2 (bad flags).
 */
import { processEnvironment } from "../common/config.ts";
import { checkHttpUrl } from "./cli_config.ts";
import type { EnvInfo } from "../protocol/envhub.ts";
import { DEFAULT_ENVHUB_URL, EnvHubClient } from "../sdk/envhub_client.ts";
import { runCli } from "./exit.ts";

/** The global flag of `rock envhub`. */
export interface EnvHubConnectionFlags {
  baseUrl?: string;
}

/** Options of `rock envhub register`. */
export interface RegisterOptions extends EnvHubConnectionFlags {
  name: string;
  image: string;
  owner?: string;
  description?: string;
  tag?: string[];
  /** Already parsed and checked to be an object by the flag parser. */
  extraSpec?: Record<string, unknown>;
}

/** Options of `rock envhub ls`. */
export interface ListOptions extends EnvHubConnectionFlags {
  owner?: string;
  tag?: string[];
  json: boolean;
}

/**
 * EnvHub's URL from `--base-url`, $ROCK_ENVHUB_BASE_URL or the default.
 * @throws {ConfigError} when it is not an http(s) URL.
 */
export function resolveEnvHubUrl(
  flags: EnvHubConnectionFlags,
  env: Record<string, string>,
): string {
  const baseUrl = flags.baseUrl ?? (env.ROCK_ENVHUB_BASE_URL || undefined) ?? DEFAULT_ENVHUB_URL;
  const source = flags.baseUrl !== undefined
    ? "--base-url"
    : env.ROCK_ENVHUB_BASE_URL
    ? "$ROCK_ENVHUB_BASE_URL"
    : "the default";
  checkHttpUrl(baseUrl, "EnvHub", source);
  return baseUrl.replace(/\/+$/, "");
}

function client(flags: EnvHubConnectionFlags): EnvHubClient {
  return new EnvHubClient(resolveEnvHubUrl(flags, processEnvironment()));
}

/** `rock envhub register`: creates or replaces an environment; prints its name. */
export function registerEnv(options: RegisterOptions): Promise<void> {
  return runCli(async () => {
    const env = await client(options).register({
      envName: options.name,
      image: options.image,
      owner: options.owner,
      description: options.description,
      tags: options.tag,
      extraSpec: options.extraSpec,
    });
    console.log(env.env_name);
  });
}

/** `rock envhub get NAME`: the environment's fields, or its EnvInfo as JSON. */
export function showEnv(
  name: string,
  options: EnvHubConnectionFlags & { json: boolean },
): Promise<void> {
  return runCli(async () => {
    const env = await client(options).get(name);
    if (options.json) {
      console.log(JSON.stringify(env, null, 2));
      return;
    }
    const rows: [string, string][] = [
      ["name", env.env_name],
      ["image", env.image],
      ["owner", env.owner],
      ["description", env.description],
      ["tags", env.tags.join(", ")],
      ["extra_spec", env.extra_spec === null ? "" : JSON.stringify(env.extra_spec)],
      ["created", env.create_at],
      ["updated", env.update_at],
    ];
    for (const [key, value] of rows) {
      if (value !== "") console.log(`${key.padEnd(12)} ${value}`);
    }
  });
}

/** `rock envhub ls`: a table, or the EnvInfo list as JSON. */
export function listEnvs(options: ListOptions): Promise<void> {
  return runCli(async () => {
    const envs = await client(options).list({ owner: options.owner, tags: options.tag });
    if (options.json) {
      console.log(JSON.stringify(envs, null, 2));
      return;
    }
    printTable(envs);
  });
}

function printTable(envs: EnvInfo[]): void {
  const rows = [["NAME", "IMAGE", "OWNER", "TAGS", "UPDATED"]];
  for (const env of envs) {
    rows.push([env.env_name, env.image, env.owner, env.tags.join(","), env.update_at]);
  }
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  for (const row of rows) {
    console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
  }
}

/** `rock envhub rm NAME`: deletes the environment; prints its name. */
export function removeEnv(name: string, options: EnvHubConnectionFlags): Promise<void> {
  return runCli(async () => {
    await client(options).delete(name);
    console.log(name);
  });
}
