/**
 * The kubernetes backend for tests: on a stand-in API server (started here unless given), with
 * a runtime image built once per test process from the tests' rocklet launcher.
 */
import { DockerCli } from "../../../src/sandbox/docker_cli.ts";
import type { KubeAccess, KubernetesBackendConfig } from "../../../src/sandbox/backend.ts";
import { KubernetesBackend } from "../../../src/sandbox/kubernetes_backend.ts";
import type { RockletLauncher } from "../../../src/sandbox/rocklet_launcher.ts";
import { buildRuntimeImage } from "../../../src/sandbox/runtime_image.ts";
import { TEST_IMAGE, testRockletLauncher } from "../docker.ts";
import { type KubeStandIn, startKubeApiServer } from "./stand_in.ts";

let runtimeImage: Promise<string> | undefined;

/** The runtime image of the tests' launcher (built on the test image, once per process). */
export function testRuntimeImage(launcher?: RockletLauncher): Promise<string> {
  runtimeImage ??= (async () =>
    await buildRuntimeImage(launcher ?? await testRockletLauncher(), {
      docker: new DockerCli(),
      base: TEST_IMAGE,
    }))();
  return runtimeImage;
}

/** Options of testKubeBackend. */
export interface TestKubeOptions {
  access?: KubeAccess | undefined;
  deploymentId?: string | undefined;
  launcher?: RockletLauncher | undefined;
  /** The stand-in to use (default: a new one, closed with the backend). */
  standIn?: KubeStandIn | undefined;
  /** More of the backend's config. */
  config?: Partial<KubernetesBackendConfig> | undefined;
}

/** A kubernetes backend on a stand-in; disposing it stops its watch and an own stand-in. */
export async function testKubeBackend(
  options: TestKubeOptions = {},
): Promise<KubernetesBackend & { standIn: KubeStandIn }> {
  const launcher = options.launcher ?? await testRockletLauncher();
  const image = await testRuntimeImage(launcher);
  const own = options.standIn === undefined;
  const standIn = options.standIn ?? await startKubeApiServer();
  const backend = new KubernetesBackend({
    type: "kubernetes",
    launcher,
    runtimeImage: image,
    runtimeImagePullPolicy: "Never",
    kubeconfig: standIn.kubeconfigPath,
    kubectlEnv: standIn.env,
    access: options.access ?? "pod-ip",
    deploymentId: options.deploymentId,
    placeTimeoutMs: 120_000,
    ...options.config,
  });
  const dispose = backend[Symbol.asyncDispose].bind(backend);
  return Object.assign(backend, {
    standIn,
    [Symbol.asyncDispose]: async () => {
      await dispose();
      if (own) await standIn.close();
    },
  });
}
