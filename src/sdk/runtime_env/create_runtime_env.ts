/** The runtime env factory: the implementation for a config's `type`. */
import { NodeRuntimeEnv } from "./node_env.ts";
import { PythonRuntimeEnv } from "./python_env.ts";
import {
  type RuntimeEnv,
  type RuntimeEnvConfigInput,
  RuntimeEnvConfigSchema,
  type RuntimeEnvOptions,
  type RuntimeEnvSandbox,
} from "./runtime_env.ts";
import { parseWire } from "../../protocol/validate.ts";

/**
 * Creates (without installing) the runtime env `config` describes; call init() to install.
 * @throws {BadRequestError} naming the key when `config` is invalid.
 * @example
 * ```ts
 * import { createRuntimeEnv, Sandbox } from "../mod.ts";
 * await using sandbox = await new Sandbox().start();
 * const python = createRuntimeEnv(sandbox, { type: "python", version: "system" });
 * await python.init();
 * console.log((await python.run("python3 --version")).output);
 * ```
 */
export function createRuntimeEnv(
  sandbox: RuntimeEnvSandbox,
  config: RuntimeEnvConfigInput,
  options: RuntimeEnvOptions = {},
): RuntimeEnv {
  const parsed = parseWire(RuntimeEnvConfigSchema, config, "runtime env config");
  switch (parsed.type) {
    case "python":
      return new PythonRuntimeEnv(sandbox, parsed, options);
    case "node":
      return new NodeRuntimeEnv(sandbox, parsed, options);
  }
}
