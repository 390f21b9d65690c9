/**
 * The one place a backend is built from its configuration. Adding a backend: its module beside
 * this file, its config in the `BackendConfig` union and its traits in `BACKEND_TRAITS`
 * (`backend.ts`), and one case here.
 */
import type { Logger } from "../common/log.ts";
import { ConfigError } from "../common/errors.ts";
import type { AutoBackendConfig, Backend, BackendConfig, DockerBackendConfig } from "./backend.ts";
import { DockerBackend } from "./docker_backend.ts";
import { DockerCli } from "./docker_cli.ts";
import { KubernetesBackend } from "./kubernetes_backend.ts";
import { LocalBackend } from "./local_backend.ts";

/** Seams of the factory (each defaults to the real thing). */
export interface BackendDeps {
  /** Where the backend logs (docker: a dropped events stream) and `auto` warns. */
  logger?: Logger;
  /** The docker CLI (default: one built from the docker config). */
  docker?: DockerCli;
}

/** A built backend and what others share with it. */
export interface CreatedBackend {
  backend: Backend;
  /**
   * The docker CLI of the configured engine, when the config names one (docker, and auto even
   * when it fell back): scheduler tasks call docker through it, with the backend's binary.
   */
  docker?: DockerCli;
  /** Why `auto` fell back to the local backend (also logged as a warning). */
  fallback?: string;
}

/**
 * Builds the backend `config` describes; `auto` picks docker when its engine answers, else local.
 * @throws {ConfigError} when the docker backend is asked for and no engine answers.
 */
export async function createBackend(
  config: BackendConfig | AutoBackendConfig,
  deps: BackendDeps = {},
): Promise<CreatedBackend> {
  switch (config.type) {
    case "local":
      return { backend: new LocalBackend(config) };
    case "docker": {
      const docker = deps.docker ?? dockerCliOf(config);
      if (!(await docker.available())) {
        throw new ConfigError(
          `Cannot use the docker backend: "${docker.binary} info" does not answer`,
        );
      }
      return { backend: new DockerBackend(config, { docker, logger: deps.logger }), docker };
    }
    case "kubernetes": {
      // Checks the cluster answers, then starts the one watch (and the proxy for api-proxy).
      const backend = new KubernetesBackend(config, { logger: deps.logger });
      await backend.start();
      return { backend };
    }
    case "auto": {
      const docker = deps.docker ?? dockerCliOf(config.docker);
      if (await docker.available()) {
        return {
          backend: new DockerBackend(config.docker, { docker, logger: deps.logger }),
          docker,
        };
      }
      const fallback = `no docker engine answered "${docker.binary} info": using the local ` +
        "backend; local sandboxes are processes on this host with no isolation and no cpu or " +
        "memory limits (--backend docker makes this an error)";
      deps.logger?.warn(fallback);
      return { backend: new LocalBackend(config.local), docker, fallback };
    }
  }
}

function dockerCliOf(config: DockerBackendConfig): DockerCli {
  return new DockerCli({ binary: config.dockerBinary, timeoutMs: config.commandTimeoutMs });
}
