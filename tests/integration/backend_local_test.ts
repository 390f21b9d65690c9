/** The backend contract against the local backend: rocklet processes under a temp dir. */
import { join } from "node:path";
import { createBackend } from "../../src/sandbox/factory.ts";
import { defineBackendContract } from "../contracts/backend_contract.ts";
import { testRockletLauncher } from "../helpers/docker.ts";

defineBackendContract({
  type: "local",
  register: (name, fn) => Deno.test(name, fn),
  async environment() {
    const dir = await Deno.makeTempDir({ prefix: "rock-backend-test-" });
    const launcher = await testRockletLauncher();
    // A deployment is an admin's data dir.
    const workRoot = (deployment: string) => join(dir, deployment, "sandboxes");
    const deployments = new Set<string>();
    return {
      async backend(deployment) {
        deployments.add(deployment);
        return (await createBackend({ type: "local", workRoot: workRoot(deployment), launcher }))
          .backend;
      },
      kill(_id, placement) {
        Deno.kill(Number(placement.handle), "SIGKILL");
        return Promise.resolve();
      },
      async remains(id) {
        const found: string[] = [];
        for (const deployment of deployments) {
          const path = join(workRoot(deployment), id);
          if (await Deno.stat(path).then(() => true, () => false)) found.push(path);
        }
        return found;
      },
      async [Symbol.asyncDispose]() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
});
