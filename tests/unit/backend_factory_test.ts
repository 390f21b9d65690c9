/** createBackend(): one case per kind, and `auto` falling back to local with a warning. */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/log.ts";
import type { DockerBackendConfig, LocalBackendConfig } from "../../src/sandbox/backend.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { createBackend } from "../../src/sandbox/factory.ts";
import type { RockletLauncher } from "../../src/sandbox/rocklet_launcher.ts";

const launcher: RockletLauncher = {
  hostCommand: () => ["true"],
  hostEnv: () => ({}),
  containerCommand: () => ["true"],
  containerEnv: () => ({}),
  containerMounts: () => [],
};
const local: LocalBackendConfig = { type: "local", workRoot: "/nonexistent/rock", launcher };
const noEngine: DockerBackendConfig = {
  type: "docker",
  launcher,
  dockerBinary: "/nonexistent/docker",
};

Deno.test("createBackend() builds the local backend with no docker CLI", async () => {
  const created = await createBackend(local);
  assert.equal(created.backend.type, "local");
  assert.equal(created.docker, undefined);
  assert.equal(created.fallback, undefined);
});

Deno.test("createBackend() fails with ConfigError naming the binary when docker is asked for and no engine answers", async () => {
  await assert.rejects(
    createBackend(noEngine),
    (error) =>
      error instanceof ConfigError &&
      error.message ===
        'Cannot use the docker backend: "/nonexistent/docker info" does not answer',
  );
});

Deno.test("createBackend() with auto and no engine warns and falls back to local, keeping the configured docker CLI", async () => {
  const lines: string[] = [];
  const docker = new DockerCli({ binary: "/nonexistent/docker" });
  const created = await createBackend({ type: "auto", docker: noEngine, local }, {
    docker,
    logger: createLogger("admin", { write: (line: string) => lines.push(line) }),
  });
  assert.equal(created.backend.type, "local");
  assert.equal(created.docker, docker);
  assert.match(created.fallback ?? "", /^no docker engine answered "\/nonexistent\/docker info"/);
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? "", / WARN \[admin\] no docker engine answered/);
});
