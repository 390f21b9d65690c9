/**
 * `rock image build-runtime`: the runtime image of the launcher the admin of the same data dir
 * would use, so an admin run by this rock build finds it by its tag (`runtimeImageTag()`).
 */
import { join } from "node:path";
import { loadAdminConfig } from "../admin/config.ts";
import { processEnvironment } from "../common/config.ts";
import { UnavailableError } from "../common/errors.ts";
import { DockerCli } from "../sandbox/docker_cli.ts";
import { prepareRockletLauncher } from "../sandbox/rocklet_launcher.ts";
import { buildRuntimeImage } from "../sandbox/runtime_image.ts";

/** Options of `rock image build-runtime`. */
export interface BuildRuntimeOptions {
  tag?: string;
  push?: boolean;
  base?: string;
  env?: string;
  config?: string;
  dataDir?: string;
}

/**
 * Builds (or finds) the runtime image and prints its tag.
 * @throws {UnavailableError} when no docker engine answers.
 * @throws {RockError} with docker's complaint when the build or the push fails.
 */
export async function buildRuntime(options: BuildRuntimeOptions): Promise<void> {
  const config = await loadAdminConfig(
    { env: options.env, config: options.config, dataDir: options.dataDir },
    processEnvironment(),
  );
  const docker = new DockerCli({ binary: config.dockerBinary });
  if (!(await docker.available())) {
    throw new UnavailableError(
      `Cannot build the runtime image: "${docker.binary} info" does not answer`,
    );
  }
  const launcher = await prepareRockletLauncher({ cacheDir: join(config.dataDir, "cache") });
  const tag = await buildRuntimeImage(launcher, {
    docker,
    tag: options.tag,
    push: options.push,
    base: options.base ?? config.k8s?.runtime_image_base,
  });
  console.log(tag);
}
