/**
 * The SDK's basics: start a sandbox, run commands in both arun modes, stop it.
 * Start an admin first (`deno task start`), then:
 *
 *   deno run -A examples/sdk_basic.ts [BASE_URL] [IMAGE]
 *
 * BASE_URL defaults to $ROCK_BASE_URL or http://localhost:8080; IMAGE to python:3.11 (with the
 * local backend any value works; with docker it must exist locally, e.g. rock-test/debian:bookworm).
 */
import { Sandbox } from "../src/sdk/mod.ts";

// A missing argument is passed on as undefined: the SDK then uses its default.
const [baseUrl, image] = Deno.args;
await using sandbox = await new Sandbox({ baseUrl, image, pull: "missing", memory: "1g", cpus: 1 })
  .start({
    onStatus: (status) => console.error(`state ${status.state}`),
  });
console.log(`sandbox ${sandbox.sandboxId} is running`);

const hello = await sandbox.arun("cd /tmp && echo hello from $(pwd)");
console.log(`normal: ${hello.output} (exit ${hello.exitCode})`);

const failing = await sandbox.arun("echo about to fail; exit 7", { mode: "nohup" });
console.log(`nohup: ${failing.output} (exit ${failing.exitCode})`);

const status = await sandbox.getStatus();
console.log(
  `phases: ${Object.entries(status.status).map(([name, p]) => `${name}=${p.status}`).join(", ")}`,
);
