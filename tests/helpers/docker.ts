/**
 * Docker for tests: whether an engine answers and the test image exists, a way for docker tests
 * to register (run when docker is there, fail in CI when it is not, else ignored with the reason
 * printed once), and cleanup of leftover test containers (their names start with `rock-test-`).
 */
import { join } from "node:path";
import { DockerCli, PRIVATE_CONFIG_PREFIX } from "../../src/sandbox/docker_cli.ts";
import {
  prepareRockletLauncher,
  type RockletLauncher,
} from "../../src/sandbox/rocklet_launcher.ts";
import { testRequiring } from "./requirement.ts";

/** The image scripts/setup_docker.sh builds: Debian bookworm minbase + python3, curl, procps. */
export const TEST_IMAGE = "rock-test/debian:bookworm";
/** Prefix of every container (sandbox id) a test creates. */
export const TEST_PREFIX = "rock-test-";

/** Whether docker tests can run, and why not. */
export interface DockerAvailability {
  available: boolean;
  /** Why docker tests cannot run (empty when they can). */
  reason: string;
}

/** Checks that a docker engine answers and that TEST_IMAGE is present. */
export async function checkDocker(docker = new DockerCli()): Promise<DockerAvailability> {
  if (!(await docker.available())) {
    return { available: false, reason: "no docker engine answers `docker info`" };
  }
  if (!(await docker.imageExists(TEST_IMAGE))) {
    return { available: false, reason: `image "${TEST_IMAGE}" is missing` };
  }
  return { available: true, reason: "" };
}

const availability = await checkDocker();

/**
 * Registers a docker test: it runs when docker is available; when it is not, it fails if the
 * environment variable CI is "true", else it is ignored (the reason is printed once).
 */
export function dockerTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  testRequiring(
    { ...availability, tests: "docker tests", remedy: "run scripts/setup_docker.sh" },
    name,
    fn,
  );
}

/** A fresh sandbox id with the test prefix: `rock-test-<label>-<random>`. */
export function testSandboxId(label: string): string {
  return `${TEST_PREFIX}${label}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Removes every container whose name starts with `rock-test-`; returns how many it removed. */
export async function removeTestContainers(docker = new DockerCli()): Promise<number> {
  const out = await docker.exec(["ps", "--all", "--format", "{{.Names}}"]);
  const names = out.split("\n").map((name) => name.trim()).filter((name) =>
    name.startsWith(TEST_PREFIX)
  );
  await docker.remove(names);
  return names.length;
}

/** Names of the containers (running or not) whose name is `name`. */
export async function containersNamed(name: string, docker = new DockerCli()): Promise<string[]> {
  const out = await docker.exec([
    "ps",
    "--all",
    "--format",
    "{{.Names}}",
    "--filter",
    `name=${name}`,
  ]);
  return out.split("\n").map((line) => line.trim()).filter((line) => line === name);
}

/**
 * The rocklet launcher for containers in tests; the bundle is cached (by source hash) in a
 * directory shared by test runs, so only the first run after a source change bundles.
 */
export function testRockletLauncher(): Promise<RockletLauncher> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  return prepareRockletLauncher({ cacheDir: join(tmp, "rock-test-cache") });
}

/** Names of the private docker configs (of pulls with credentials) in the temp dir, sorted. */
export async function privateDockerConfigs(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
    if (entry.name.startsWith(PRIVATE_CONFIG_PREFIX)) names.push(entry.name);
  }
  return names.sort();
}
