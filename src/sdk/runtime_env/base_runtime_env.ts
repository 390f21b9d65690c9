/**
 * What Python and Node runtime envs share (ROCK's `RuntimeEnv` base): the session, the work dir,
 * the install command with retries, `system` lookup, the custom install command, symlinks, and
 * `run()`. Subclasses add their package steps.
 */
import type { ArunResult } from "../sandbox.ts";
import { CommandRockError, RockSdkError } from "../errors.ts";
import { shellQuote } from "../shell_text.ts";
import {
  DEFAULT_INSTALL_COMMANDS,
  type InstallCommandName,
  RUNTIME_VERSIONS,
  type RuntimeEnv,
  type RuntimeEnvConfig,
  type RuntimeEnvInitOptions,
  type RuntimeEnvOptions,
  type RuntimeEnvRunOptions,
  type RuntimeEnvSandbox,
  type RuntimeEnvType,
} from "./runtime_env.ts";

/** Where a subclass's runtime comes from and what it is called. */
export interface RuntimeEnvKind {
  /** The executable that proves the runtime is there (`python`, `node`). */
  executable: string;
  /** For `system`: names looked up on the sandbox's PATH, in order (`python3`, `python`). */
  systemExecutables: string[];
  /** What is linked into `extra_symlink_dir` when the config lists nothing. */
  symlinkExecutables: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(text: string, length = 1000): string {
  const trimmed = text.trim();
  return trimmed.length > length ? `...${trimmed.slice(-length)}` : trimmed;
}

/** The shared implementation of RuntimeEnv; subclasses implement postInstall(). */
export abstract class BaseRuntimeEnv<C extends RuntimeEnvConfig> implements RuntimeEnv {
  /** "python" or "node". */
  readonly type: RuntimeEnvType;
  /** The configured version. */
  readonly version: string;
  /** Eight hex characters naming this instance. */
  readonly id: string;
  /** The work dir in the sandbox. */
  readonly workdir: string;
  /** The bash session. */
  readonly session: string;
  /** The validated config. */
  readonly config: C;
  /** The sandbox it lives in. */
  protected readonly sandbox: RuntimeEnvSandbox;
  /** Install settings from the caller. */
  protected readonly options: RuntimeEnvOptions;
  readonly #kind: RuntimeEnvKind;
  #binDir: string | undefined;
  #executable: string;
  #initialized = false;
  #initializing: Promise<void> | undefined;
  #sessionReady: Promise<void> | undefined;
  #deadline: number | undefined;

  /** Creates the handle; nothing runs until init() or run(). */
  constructor(
    sandbox: RuntimeEnvSandbox,
    config: C,
    kind: RuntimeEnvKind,
    options: RuntimeEnvOptions = {},
  ) {
    this.sandbox = sandbox;
    this.config = config;
    this.options = options;
    this.#kind = kind;
    this.type = config.type;
    this.version = config.version;
    this.id = crypto.randomUUID().slice(0, 8);
    this.workdir = `/tmp/rock-runtime-envs/${this.type}/${this.version}/${this.id}`;
    this.session = `runtime-env-${this.type}-${this.version}-${this.id}`;
    this.#executable = kind.executable;
    if (!this.isSystem) this.#binDir = `${this.workdir}/runtime-env/bin`;
  }

  /** True for `version: system` (nothing is downloaded). */
  get isSystem(): boolean {
    return this.version === "system";
  }

  /** The runtime's main executable in binDir (`python`, or `python3` for some systems). */
  get executable(): string {
    return this.#executable;
  }

  /** The runtime's bin directory; for `system` it is known once init() has run. */
  get binDir(): string {
    if (this.#binDir === undefined) {
      throw new RockSdkError(
        `The bin_dir of ${this.#label()} is known only after init(): it is where the image's ` +
          `${this.#kind.systemExecutables.join(" or ")} is`,
      );
    }
    return this.#binDir;
  }

  /** True once init() has finished. */
  get initialized(): boolean {
    return this.#initialized;
  }

  /** Installs everything once; concurrent and later calls share the first run. */
  init(options: RuntimeEnvInitOptions = {}): Promise<void> {
    if (this.#initialized) return Promise.resolve();
    this.#initializing ??= this.#init(options).catch((error) => {
      this.#initializing = undefined;
      throw error;
    });
    return this.#initializing;
  }

  async #init(options: RuntimeEnvInitOptions): Promise<void> {
    this.#deadline = options.deadline;
    try {
      await this.#ensureSession();
      // Plain arun: for `system` the bin dir (which run() puts on the PATH) is not known yet.
      const made = await this.sandbox.arun(`mkdir -p ${shellQuote(this.workdir)}`, {
        session: this.session,
        waitTimeout: this.#timeout("creating the work dir"),
      });
      if (made.exitCode !== 0) throw this.#failure("creating the work dir", made);
      const installName =
        (RUNTIME_VERSIONS[this.type] as Record<string, InstallCommandName | null>)[this.version];
      if (installName) await this.#install(installName);
      else await this.#locateSystem();
      await this.step(
        `find ${this.#executable} in ${this.binDir}`,
        `test -x ${shellQuote(`${this.binDir}/${this.#executable}`)}`,
      );
      await this.postInstall();
      if (this.config.custom_install_cmd) {
        await this.step(
          "custom_install_cmd",
          `cd ${shellQuote(this.workdir)} && ${this.config.custom_install_cmd}`,
        );
      }
      await this.#createSymlinks();
      this.#initialized = true;
    } finally {
      this.#deadline = undefined;
    }
  }

  /** Package steps after the runtime is there (pip, npm); run with step(). */
  protected abstract postInstall(): Promise<void>;

  /** Runs `cmd` with bin_dir on the PATH and returns its output and real exit code. */
  async run(cmd: string, options: RuntimeEnvRunOptions = {}): Promise<ArunResult> {
    await this.#ensureSession();
    return await this.sandbox.arun(this.wrappedCmd(cmd, { append: options.append }), {
      session: this.session,
      mode: "nohup",
      waitTimeout: options.waitTimeout ?? 600,
    });
  }

  /** `bash -c 'export PATH=<bin_dir>:$PATH && <cmd>'` (`$PATH:<bin_dir>` with append). */
  wrappedCmd(cmd: string, options: { append?: boolean | undefined } = {}): string {
    const bin = shellQuote(this.binDir);
    const path = options.append ? `$PATH:${bin}` : `${bin}:$PATH`;
    return `bash -c ${shellQuote(`export PATH=${path} && ${cmd}`)}`;
  }

  /**
   * Runs one install step with run() (timeout: install_timeout, capped by the init deadline).
   * @throws {CommandRockError} naming the step, the exit code and the output's tail.
   */
  protected async step(what: string, cmd: string): Promise<ArunResult> {
    const result = await this.run(cmd, { waitTimeout: this.#timeout(what) });
    if (result.exitCode !== 0) throw this.#failure(what, result);
    return result;
  }

  #label(): string {
    return `${this.type} runtime env "${this.version}" in sandbox "${this.sandbox.sandboxId}"`;
  }

  #failure(what: string, result: ArunResult, attempts?: number): CommandRockError {
    const how = result.exitCode === null
      ? result.failureReason
      : `exit code ${result.exitCode}${attempts ? ` after ${attempts} tries` : ""}`;
    return new CommandRockError(
      `Cannot set up ${this.#label()}: ${what} failed with ${how}: ${tail(result.output)}`,
      { sandboxId: this.sandbox.sandboxId, extraInfo: { exit_code: result.exitCode } },
    );
  }

  /** Seconds a step may take: install_timeout, or less when the init deadline is nearer. */
  #timeout(what: string): number {
    const own = this.config.install_timeout;
    if (this.#deadline === undefined) return own;
    const left = (this.#deadline - Date.now()) / 1000;
    if (left <= 0) {
      throw new RockSdkError(`Cannot set up ${this.#label()}: no time left for ${what}`, {
        sandboxId: this.sandbox.sandboxId,
      });
    }
    return Math.min(own, left);
  }

  #ensureSession(): Promise<void> {
    this.#sessionReady ??= this.sandbox.createSession(this.session, {
      envEnable: true,
      env: this.config.env,
    }).catch((error) => {
      this.#sessionReady = undefined;
      throw error;
    });
    return this.#sessionReady;
  }

  /** The install command, tried `installAttempts` times with a doubling delay (ROCK: 3, 5 s). */
  async #install(name: InstallCommandName): Promise<void> {
    const command = this.options.installCommands?.[name] ?? DEFAULT_INSTALL_COMMANDS[name];
    const attempts = Math.max(1, this.options.installAttempts ?? 3);
    let delay = this.options.retryDelayMs ?? 5000;
    const what = `the install command (${name})`;
    const wrapped = `bash -c ${shellQuote(`cd ${shellQuote(this.workdir)} && ${command}`)}`;
    for (let attempt = 1;; attempt++) {
      const result = await this.sandbox.arun(wrapped, {
        session: this.session,
        mode: "nohup",
        waitTimeout: this.#timeout(what),
      });
      if (result.exitCode === 0) return;
      if (attempt >= attempts) throw this.#failure(what, result, attempts);
      await sleep(delay);
      delay *= 2;
    }
  }

  /** `system`: bin_dir is the directory of the first of systemExecutables on the PATH. */
  async #locateSystem(): Promise<void> {
    const names = this.#kind.systemExecutables;
    const lookup = names.map((name) => `command -v ${shellQuote(name)}`).join(" || ");
    const result = await this.sandbox.arun(lookup, { session: this.session, waitTimeout: 30 });
    const path = result.output.trim().split("\n").pop() ?? "";
    if (result.exitCode !== 0 || !path.startsWith("/")) {
      throw new CommandRockError(
        `Cannot set up ${this.#label()}: the image has no ${names.join(" or ")} on its PATH` +
          (result.output.trim() ? `: ${tail(result.output, 300)}` : ""),
        { sandboxId: this.sandbox.sandboxId, extraInfo: { exit_code: result.exitCode } },
      );
    }
    const slash = path.lastIndexOf("/");
    this.#binDir = path.slice(0, slash) || "/";
    this.#executable = path.slice(slash + 1);
  }

  /**
   * `ln -sf <bin_dir>/<exe> <extra_symlink_dir>/<exe>`. Executables listed in the config must
   * exist; the default list links those that do. Nothing to do when the dirs are the same.
   */
  async #createSymlinks(): Promise<void> {
    const dir = this.config.extra_symlink_dir?.replace(/(.)\/+$/, "$1");
    const listed = this.config.extra_symlink_executables;
    const names = listed ?? this.#kind.symlinkExecutables;
    if (!dir || names.length === 0 || dir === this.binDir) return;
    const bin = shellQuote(this.binDir);
    const words = names.map(shellQuote).join(" ");
    const check = listed
      ? `missing=; for e in ${words}; do [ -x ${bin}/"$e" ] || missing="$missing $e"; done; ` +
        `if [ -n "$missing" ]; then echo "not in ${this.binDir}:$missing"; exit 1; fi; `
      : "";
    const skip = listed ? "" : `[ -x ${bin}/"$e" ] || continue; `;
    await this.step(
      `linking ${names.join(", ")} into ${dir}`,
      `${check}mkdir -p ${shellQuote(dir)} && for e in ${words}; do ${skip}` +
        `ln -sf ${bin}/"$e" ${shellQuote(dir)}/"$e" || exit 1; done`,
    );
  }
}
