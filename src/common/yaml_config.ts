/** Reading YAML configuration files validated by a zod schema, failing with the file and key. */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ConfigError } from "./errors.ts";

/**
 * Reads `path` as YAML (an empty file is `{}`) and validates it with `schema`.
 * @throws {ConfigError} naming the file, and the key that is wrong.
 */
export async function readYamlConfig<S extends z.ZodType>(
  path: string,
  schema: S,
): Promise<z.output<S>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(`Cannot read config file "${path}": ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text) ?? {};
  } catch (error) {
    throw new ConfigError(`Cannot parse config file "${path}": ${(error as Error).message}`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const [issue] = result.error.issues;
    if (issue === undefined) throw new ConfigError(`Invalid config file "${path}"`);
    const unrecognized = issue.code === "unrecognized_keys" ? issue.keys.slice(0, 1) : [];
    const key = [...issue.path, ...unrecognized].join(".");
    throw new ConfigError(
      `Invalid config file "${path}": ${key ? `key "${key}": ` : ""}${issue.message}`,
    );
  }
  return result.data;
}
