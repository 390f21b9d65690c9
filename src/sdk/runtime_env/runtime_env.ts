/**
 * Runtime environments: a Python or Node installation in a sandbox, with its own work dir,
 * bash session and `bin` directory, used by RockAgent (ROCK's `rock/sdk/sandbox/runtime_env`).
 * This file holds the interface, the config schemas (ROCK's snake_case keys, a union
 * discriminated by `type`) and the version table; `python_env.ts` and `node_env.ts` implement
 * it and `create_runtime_env.ts` is the factory.
 */
import { z } from "zod";
import type { ArunResult, Sandbox } from "../sandbox.ts";

/** Names of the variables (ROCK's) holding the install command of each downloadable version. */
export type InstallCommandName =
  | "ROCK_RTENV_PYTHON_V31114_INSTALL_CMD"
  | "ROCK_RTENV_PYTHON_V31212_INSTALL_CMD"
  | "ROCK_RTENV_NODE_V22180_INSTALL_CMD";

/**
 * ROCK's install commands (`rock/env_vars.py`). Each runs in the env's work dir and must leave
 * the runtime in `runtime-env/` there (so `bin_dir` is `<workdir>/runtime-env/bin`). They download
 * from github.com and nodejs.org: sandboxes without internet need other values (a mirror, or a
 * copy baked into the image), or `version: system`.
 */
export const DEFAULT_INSTALL_COMMANDS: Readonly<Record<InstallCommandName, string>> = Object
  .freeze({
    ROCK_RTENV_PYTHON_V31114_INSTALL_CMD:
      "[ -f cpython31114.tar.gz ] && rm cpython31114.tar.gz; [ -d python ] && rm -rf python; " +
      "wget -q -O cpython31114.tar.gz https://github.com/astral-sh/python-build-standalone/" +
      "releases/download/20251120/cpython-3.11.14+20251120-x86_64-unknown-linux-gnu-install_only" +
      ".tar.gz && tar -xzf cpython31114.tar.gz && mv python runtime-env",
    ROCK_RTENV_PYTHON_V31212_INSTALL_CMD:
      "[ -f cpython-31212.tar.gz ] && rm cpython-31212.tar.gz; [ -d python ] && rm -rf python; " +
      "wget -q -O cpython-31212.tar.gz https://github.com/astral-sh/python-build-standalone/" +
      "releases/download/20251217/cpython-3.12.12+20251217-x86_64-unknown-linux-gnu-install_only" +
      ".tar.gz && tar -xzf cpython-31212.tar.gz && mv python runtime-env",
    ROCK_RTENV_NODE_V22180_INSTALL_CMD:
      "[ -f node.tar.xz ] && rm node.tar.xz; [ -d node ] && rm -rf node; " +
      "wget -q -O node.tar.xz --tries=10 --waitretry=2 " +
      "https://nodejs.org/dist/v22.18.0/node-v22.18.0-linux-x64.tar.xz && tar -xf node.tar.xz && " +
      "mv node-v22.18.0-linux-x64 runtime-env",
  });

/**
 * The version table: each configurable version and the install command that provides it;
 * `null` means `system` (use what the image has, nothing is downloaded).
 */
export const RUNTIME_VERSIONS = {
  python: {
    "3.11": "ROCK_RTENV_PYTHON_V31114_INSTALL_CMD",
    "3.12": "ROCK_RTENV_PYTHON_V31212_INSTALL_CMD",
    "default": "ROCK_RTENV_PYTHON_V31114_INSTALL_CMD",
    "system": null,
  },
  node: {
    "22.18.0": "ROCK_RTENV_NODE_V22180_INSTALL_CMD",
    "default": "ROCK_RTENV_NODE_V22180_INSTALL_CMD",
    "system": null,
  },
} as const satisfies Record<string, Record<string, InstallCommandName | null>>;

/** Kinds of runtime environment. */
export type RuntimeEnvType = keyof typeof RUNTIME_VERSIONS;

// YAML reads `version: 3.11` as a number; take it as the string the user meant.
const versionOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(
    (value) => typeof value === "number" ? String(value) : value,
    z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(", ")}` }),
  );

/** Variables of a session: YAML numbers and booleans are taken as the text they were written as. */
export const EnvVariablesSchema = z.record(
  z.string(),
  z.preprocess(
    (value) => typeof value === "number" || typeof value === "boolean" ? String(value) : value,
    z.string(),
  ),
);

const executables = z.array(z.string().regex(/^[^/\s]+$/, "expected an executable name"));

/** Keys every runtime env has (ROCK's RuntimeEnvConfig); documented on RuntimeEnvBaseConfig. */
const baseFields = {
  "env": EnvVariablesSchema.default({}),
  "install_timeout": z.number().int().positive().default(600),
  "custom_install_cmd": z.string().nullish(),
  "extra_symlink_dir": z.string().regex(/^\//, "expected an absolute path").nullish(),
  "extra_symlink_executables": executables.optional(),
};

/** Keys every runtime env config has (ROCK's RuntimeEnvConfig). */
export interface RuntimeEnvBaseConfig {
  /** Variables of the env's session (default none). */
  env: Record<string, string>;
  /** Seconds each install step may take (default 600). */
  install_timeout: number;
  /** Run in the work dir after the runtime and packages are installed. */
  custom_install_cmd?: string | null | undefined;
  /** Directory (on the system PATH) that gets symlinks to `extra_symlink_executables`. */
  extra_symlink_dir?: string | null | undefined;
  /**
   * Executables of `bin_dir` to link into `extra_symlink_dir`; each must exist. Default: the
   * runtime's own (python, python3, pip, pip3 / node, npm, npx), those that exist.
   */
  extra_symlink_executables?: string[] | undefined;
}

/** A Python runtime env config (`type: python`). */
export interface PythonRuntimeEnvConfig extends RuntimeEnvBaseConfig {
  /** Discriminator. */
  type: "python";
  /** "3.11", "3.12", "default" (3.11) or "system" (the image's python3; nothing downloaded). */
  version: "3.11" | "3.12" | "default" | "system";
  /** Packages to install (a list), or the local path of a requirements file (a string). */
  pip?: string[] | string | null | undefined;
  /** Index URL set with `pip config` (default: RuntimeEnvOptions.pipIndexUrl). */
  pip_index_url?: string | null | undefined;
}

/** A Node runtime env config (`type: node`). */
export interface NodeRuntimeEnvConfig extends RuntimeEnvBaseConfig {
  /** Discriminator. */
  type: "node";
  /** "22.18.0", "default" (22.18.0) or "system" (the image's node; nothing downloaded). */
  version: "22.18.0" | "default" | "system";
  /** Registry set with `npm config set registry`. */
  npm_registry?: string | null | undefined;
  /** rock: packages installed with `npm install -g` (ROCK uses custom_install_cmd for this). */
  npm?: string[] | null | undefined;
}

/** A runtime env config (parsed, defaults applied), told apart by `type`. */
export type RuntimeEnvConfig = PythonRuntimeEnvConfig | NodeRuntimeEnvConfig;

/** A runtime env config as written: `type`, the rest optional. */
export type RuntimeEnvConfigInput =
  | (
    & { type: "python" }
    & {
      [K in Exclude<keyof PythonRuntimeEnvConfig, "type">]?: PythonRuntimeEnvConfig[K] | undefined;
    }
  )
  | (
    & { type: "node" }
    & {
      [K in Exclude<keyof NodeRuntimeEnvConfig, "type">]?: NodeRuntimeEnvConfig[K] | undefined;
    }
  );

/** Validates a Python runtime env config. */
export const PythonRuntimeEnvConfigSchema = z.strictObject({
  "type": z.literal("python"),
  "version": versionOf(["3.11", "3.12", "default", "system"]).default("default"),
  "pip": z.union([z.array(z.string().min(1)), z.string().min(1)]).nullish(),
  "pip_index_url": z.string().nullish(),
  ...baseFields,
});

/** Validates a Node runtime env config. */
export const NodeRuntimeEnvConfigSchema = z.strictObject({
  "type": z.literal("node"),
  "version": versionOf(["22.18.0", "default", "system"]).default("default"),
  "npm_registry": z.string().nullish(),
  "npm": z.array(z.string().min(1)).nullish(),
  ...baseFields,
});

/** Validates any runtime env config by its `type`. */
export const RuntimeEnvConfigSchema = z.discriminatedUnion("type", [
  PythonRuntimeEnvConfigSchema,
  NodeRuntimeEnvConfigSchema,
], { error: 'expected "python" or "node"' });

/** What a runtime env needs of a sandbox (a Sandbox has all of it). */
export type RuntimeEnvSandbox = Pick<
  Sandbox,
  "sandboxId" | "arun" | "createSession" | "uploadByPath"
>;

/** How runtime envs are installed; the caller supplies what ROCK reads from the environment. */
export interface RuntimeEnvOptions {
  /**
   * Install commands by ROCK's variable name (the CLI passes $ROCK_RTENV_*_INSTALL_CMD);
   * missing ones fall back to DEFAULT_INSTALL_COMMANDS.
   */
  installCommands?: Partial<Record<InstallCommandName, string>> | undefined;
  /** pip index used when a python config sets no `pip_index_url` ($ROCK_PIP_INDEX_URL). */
  pipIndexUrl?: string | undefined;
  /** Tries of the install command (default 3, as ROCK). */
  installAttempts?: number | undefined;
  /** Milliseconds before the second try, doubled for each further one (default 5000). */
  retryDelayMs?: number | undefined;
}

/** Options of RuntimeEnv.run(). */
export interface RuntimeEnvRunOptions {
  /** Seconds to wait (default 600). */
  waitTimeout?: number | undefined;
  /** Put `bin_dir` after the PATH instead of before it. */
  append?: boolean | undefined;
}

/** Options of RuntimeEnv.init(). */
export interface RuntimeEnvInitOptions {
  /** Epoch milliseconds by which init must be done; every step's timeout is capped by it. */
  deadline?: number | undefined;
}

/**
 * A runtime installed in a sandbox. `init()` installs it once; `run()` runs a command with
 * `bin_dir` first on the PATH and returns its output and real exit code.
 */
export interface RuntimeEnv {
  /** "python" or "node". */
  readonly type: RuntimeEnvType;
  /** The configured version ("default", "3.12", "system", ...). */
  readonly version: string;
  /** Eight hex characters naming this instance. */
  readonly id: string;
  /** `/tmp/rock-runtime-envs/<type>/<version>/<id>`. */
  readonly workdir: string;
  /** The bash session commands run in: `runtime-env-<type>-<version>-<id>`. */
  readonly session: string;
  /**
   * Directory of the runtime's executables: `<workdir>/runtime-env/bin`, or for `system` the
   * directory of the image's executable (known once init() has run).
   */
  readonly binDir: string;
  /** True once init() has finished. */
  readonly initialized: boolean;
  /** Installs the runtime, packages, the custom command and symlinks (once; later calls return). */
  init(options?: RuntimeEnvInitOptions): Promise<void>;
  /** Runs `cmd` (nohup, in the env's session) with `bin_dir` on the PATH. */
  run(cmd: string, options?: RuntimeEnvRunOptions): Promise<ArunResult>;
  /** `bash -c 'export PATH=<bin_dir>:$PATH && <cmd>'`, the way run() and agents wrap commands. */
  wrappedCmd(cmd: string, options?: { append?: boolean }): string;
}
