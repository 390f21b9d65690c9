/**
 * A real image registry for tests: Debian's docker-registry on 127.0.0.1, demanding basic auth
 * (htpasswd from apache2-utils; scripts/setup_docker.sh installs both).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { dockerTest } from "./docker.ts";

const REGISTRY_BINARY = "/usr/bin/docker-registry";
const HTPASSWD_BINARY = "/usr/bin/htpasswd";

/** Why registry tests cannot run here, or "" when they can. */
async function missingTools(): Promise<string> {
  for (const binary of [REGISTRY_BINARY, HTPASSWD_BINARY]) {
    const found = await Deno.stat(binary).then(() => true, () => false);
    if (!found) return `"${binary}" is missing`;
  }
  return "";
}

const missing = await missingTools();

/** A docker test that also needs the registry tools: skipped without them, failed in CI. */
export function registryTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (!missing) return dockerTest(name, fn);
  const reason = `${missing}; run scripts/setup_docker.sh (apt-get install docker-registry ` +
    `apache2-utils)`;
  if (Deno.env.get("CI") === "true") {
    Deno.test(name, () => {
      throw new Error(`registry tools required in CI: ${reason}`);
    });
    return;
  }
  console.error(`registry tests ignored: ${reason}`);
  Deno.test({ name, ignore: true, fn });
}

/** A registry on 127.0.0.1 demanding basic auth; dispose stops it and removes its files. */
export interface Registry extends AsyncDisposable {
  /** "127.0.0.1:<port>" */
  host: string;
}

/** Starts docker-registry on a free loopback port with one htpasswd user; waits until it answers. */
export async function startRegistry(user: string, password: string): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: "rock-test-registry-" });
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const htpasswd = await new Deno.Command(HTPASSWD_BINARY, {
    args: ["-Bbn", user, password],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(htpasswd.code, 0, new TextDecoder().decode(htpasswd.stderr));
  await Deno.writeFile(join(dir, "htpasswd"), htpasswd.stdout);
  await Deno.writeTextFile(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${join(dir, "data")} } }`,
      `http: { addr: "${host}" }`,
      `auth: { htpasswd: { realm: rock-test, path: ${join(dir, "htpasswd")} } }`,
      "",
    ].join("\n"),
  );
  const log = join(dir, "registry.log");
  // exec: the signal that stops the shell stops the registry itself.
  const child = new Deno.Command("sh", {
    args: ["-c", `exec "$0" serve "$1" >"$2" 2>&1`, REGISTRY_BINARY, join(dir, "config.yml"), log],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    while (true) {
      const status = await fetch(`http://${host}/v2/`).then((r) => {
        r.body?.cancel();
        return r.status;
      }, () => 0);
      if (status === 401) break;
      if (Date.now() > deadline) {
        const output = await Deno.readTextFile(log).catch(() => "");
        throw new Error(
          `registry on ${host} did not answer 401 within 30 s (got ${status}): ${output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { host, [Symbol.asyncDispose]: stop };
}

/** A loopback port nothing listens on right now. */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}
