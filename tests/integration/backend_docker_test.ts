/** The backend contract against the docker backend on the real engine. */
import { BadRequestError } from "../../src/common/errors.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { createBackend } from "../../src/sandbox/factory.ts";
import { contractSpec, defineBackendContract } from "../contracts/backend_contract.ts";
import { containersNamed, dockerTest, testRockletLauncher } from "../helpers/docker.ts";

const docker = new DockerCli();

defineBackendContract({
  type: "docker",
  register: dockerTest,
  async environment() {
    const launcher = await testRockletLauncher();
    // Deployment ids of their own, so tests running at once never see each other's containers.
    const run = crypto.randomUUID().slice(0, 8);
    return {
      async backend(deployment) {
        const deploymentId = `rock-test-${run}-${deployment}`;
        return (await createBackend({ type: "docker", launcher, deploymentId }, { docker }))
          .backend;
      },
      async kill(id) {
        await docker.exec(["kill", id]);
      },
      remains: (id) => containersNamed(id, docker),
      async [Symbol.asyncDispose]() {},
    };
  },
  unplaceable: (id) => ({
    spec: { ...contractSpec(id), image: "rock-test/does-not-exist:never", pull: "never" },
    error: BadRequestError,
  }),
});
