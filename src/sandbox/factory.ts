/**
 * The one place a backend is built from its configuration. Adding a backend: its module beside
 * this file, its config in the `BackendConfig` union and its traits in `BACKEND_TRAITS`
 * (`backend.ts`), and one case here.
 */
import type { Logger } from "../common/log.ts";
import { ConfigError } from "../common/errors.ts";
import type {
  AutoBackendConfig,
  Backend,
  BackendConfig,
  DockerBackendConfig,
  KubernetesBackendConfig,
} from "./backend.ts";
import { DockerBackend } from "./docker_backend.ts";
import { DockerCli } from "./docker_cli.ts";
import { KubernetesBackend } from "./kubernetes_backend.ts";
import { LocalBackend } from "./local_backend.ts";
import { buildRuntimeImage } from "./runtime_image.ts";

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
 * kubernetes builds its runtime image when none is named and waits until the cluster answers.
 * @throws {ConfigError} when the docker backend is asked for and no engine answers, or the
 *   kubernetes backend's kubeconfig is missing, or it names no runtime image and no engine
 *   answers to build one.
 * @throws {RockError} with kubectl's complaint when the cluster cannot be reached.
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
      // kubectl would only say its context is missing.
      if (config.kubeconfig && !(await Deno.stat(config.kubeconfig).catch(() => undefined))) {
        throw new ConfigError(
          `Cannot use the kubernetes backend: kubeconfig "${config.kubeconfig}" does not exist`,
        );
      }
      const runtimeImage = config.runtimeImage ?? await localRuntimeImage(config, deps);
      // Checks the cluster answers, then starts the one watch (and the proxy for api-proxy).
      const backend = new KubernetesBackend({ ...config, runtimeImage }, { logger: deps.logger });
      try {
        await backend.start();
      } catch (error) {
        await backend[Symbol.asyncDispose]();
        throw error;
      }
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

/**
 * The runtime image of the kubernetes backend's launcher, built with the local docker engine
 * unless an image of its tag is there (`rock image build-runtime` builds the same one).
 * @throws {ConfigError} when no docker engine answers to build it.
 */
async function localRuntimeImage(
  config: KubernetesBackendConfig,
  deps: BackendDeps,
): Promise<string> {
  const docker = deps.docker ?? new DockerCli();
  if (!(await docker.available())) {
    throw new ConfigError(
      "Cannot use the kubernetes backend: it needs k8s.runtime_image (the image its pods copy " +
        `the rocklet from, see "rock image build-runtime"), or a docker engine to build it, and ` +
        `"${docker.binary} info" does not answer`,
    );
  }
  const tag = await buildRuntimeImage(config.launcher, {
    docker,
    base: config.runtimeImageBase,
  });
  deps.logger?.info("Kubernetes runtime image ready", { image: tag });
  return tag;
}

function dockerCliOf(config: DockerBackendConfig): DockerCli {
  return new DockerCli({ binary: config.dockerBinary, timeoutMs: config.commandTimeoutMs });
}
