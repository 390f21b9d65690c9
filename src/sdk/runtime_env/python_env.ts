/**
 * A Python runtime env (ROCK's `PythonRuntimeEnv`): 3.11 or 3.12 from python-build-standalone,
 * or the image's own python3 (`system`); pip index and packages (a list, or a local
 * requirements file that is uploaded first).
 */
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { BadRequestRockError } from "../errors.ts";
import { shellQuote } from "../shell_text.ts";
import { BaseRuntimeEnv } from "./base_runtime_env.ts";
import type {
  PythonRuntimeEnvConfig,
  RuntimeEnvOptions,
  RuntimeEnvSandbox,
} from "./runtime_env.ts";

/** Python in a sandbox; `run("python --version")` runs with its bin dir first on the PATH. */
export class PythonRuntimeEnv extends BaseRuntimeEnv<PythonRuntimeEnvConfig> {
  /** Creates the handle; init() installs. */
  constructor(
    sandbox: RuntimeEnvSandbox,
    config: PythonRuntimeEnvConfig,
    options: RuntimeEnvOptions = {},
  ) {
    super(sandbox, config, {
      executable: "python",
      systemExecutables: ["python3", "python"],
      symlinkExecutables: ["python", "python3", "pip", "pip3"],
    }, options);
  }

  /**
   * The index URL pip is configured with: the config's `pip_index_url`, else the caller's
   * default (not for `system`, whose pip may be absent or managed by the image).
   */
  get pipIndexUrl(): string | undefined {
    return this.config.pip_index_url ?? (this.isSystem ? undefined : this.options.pipIndexUrl);
  }

  /** pip index, then packages. */
  protected override async postInstall(): Promise<void> {
    const pip = `${shellQuote(this.executable)} -m pip`;
    const index = this.pipIndexUrl;
    if (index) {
      await this.step("pip config", `${pip} config set global.index-url ${shellQuote(index)}`);
    }
    const packages = this.config.pip;
    if (!packages || packages.length === 0) return;
    if (typeof packages === "string") {
      const isFile = await stat(packages).then((s) => s.isFile(), () => false);
      if (!isFile) {
        throw new BadRequestRockError(
          `Cannot install pip requirements into sandbox "${this.sandbox.sandboxId}": ` +
            `requirements file "${packages}" not found`,
          { sandboxId: this.sandbox.sandboxId },
        );
      }
      const target = `${this.workdir}/${basename(packages)}`;
      await this.sandbox.uploadByPath(packages, target);
      await this.step("pip install -r", `${pip} install -r ${shellQuote(target)}`);
    } else {
      await this.step("pip install", `${pip} install ${packages.map(shellQuote).join(" ")}`);
    }
  }
}
