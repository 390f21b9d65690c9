/**
 * A Node runtime env (ROCK's `NodeRuntimeEnv`): 22.18.0 from nodejs.org, or the image's own node
 * (`system`); npm registry, and (beyond ROCK) global npm packages.
 */
import { shellQuote } from "../shell_text.ts";
import { BaseRuntimeEnv } from "./base_runtime_env.ts";
import type { NodeRuntimeEnvConfig, RuntimeEnvOptions, RuntimeEnvSandbox } from "./runtime_env.ts";

/** Node in a sandbox; `run("npm i -g x")` installs into its own prefix. */
export class NodeRuntimeEnv extends BaseRuntimeEnv<NodeRuntimeEnvConfig> {
  /** Creates the handle; init() installs. */
  constructor(
    sandbox: RuntimeEnvSandbox,
    config: NodeRuntimeEnvConfig,
    options: RuntimeEnvOptions = {},
  ) {
    super(sandbox, config, {
      executable: "node",
      systemExecutables: ["node"],
      symlinkExecutables: ["node", "npm", "npx"],
    }, options);
  }

  /** npm registry, then packages. */
  protected override async postInstall(): Promise<void> {
    if (this.config.npm_registry) {
      await this.step(
        "npm config",
        `npm config set registry ${shellQuote(this.config.npm_registry)}`,
      );
    }
    const packages = this.config.npm;
    if (packages && packages.length > 0) {
      await this.step("npm install -g", `npm install -g ${packages.map(shellQuote).join(" ")}`);
    }
  }
}
