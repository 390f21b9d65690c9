/**
 * A group of sandboxes started together, with bounded concurrency and retries; failures are
 * reported per sandbox instead of failing the whole group.
 *
 *   deno run -A examples/sandbox_group.ts [BASE_URL] [IMAGE] [SIZE]
 *
 * BASE_URL defaults to $ROCK_BASE_URL or http://localhost:8080; IMAGE to python:3.11; SIZE to 3.
 */
import { SandboxGroup } from "../src/sdk/mod.ts";

const [baseUrl, image, size = "3"] = Deno.args;
await using group = await new SandboxGroup({
  baseUrl,
  image,
  memory: "1g",
  cpus: 1,
  size: Number(size),
  startConcurrency: 2,
  startRetryTimes: 1,
}).start();
console.log(`started ${group.sandboxes.length} of ${size}`);
for (const failure of group.failures) {
  console.log(`sandbox ${failure.index} failed: ${failure.error?.message}`);
}
const hostnames = await Promise.all(group.sandboxes.map((s) => s.arun("echo member $RANDOM")));
console.log(`ran in all: ${hostnames.every((r) => r.exitCode === 0)}`);
