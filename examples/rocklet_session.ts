/**
 * Talks to a rocklet with the typed client: a bash session, a file round trip and a one-shot
 * command. Start a rocklet first (`deno task rock rocklet --host 127.0.0.1 --port 22555`), then:
 *
 *   deno run --allow-net examples/rocklet_session.ts [ROCKLET_URL]
 *
 * ROCKLET_URL defaults to http://127.0.0.1:22555.
 */
import { RockletClient } from "../src/sdk/rocklet_client.ts";

const rocklet = new RockletClient(Deno.args[0]);

await rocklet.createSession({ session: "example" });
await rocklet.runInSession({ session: "example", command: "cd /tmp && export GREETING=hello" });
const observation = await rocklet.runInSession({
  session: "example",
  command: "echo $GREETING from $(pwd)",
});
console.log(`session: ${observation.output} (exit ${observation.exit_code})`);

const path = `/tmp/rock-example-${crypto.randomUUID()}.txt`;
await rocklet.writeFile({ path, content: "written through the rocklet\n" });
console.log(`file: ${(await rocklet.readFile({ path })).content.trim()}`);

const result = await rocklet.execute({ command: ["rm", "-v", path] });
console.log(`execute: ${result.stdout.trim()} (exit ${result.exit_code})`);
await rocklet.closeSession({ session: "example" });
