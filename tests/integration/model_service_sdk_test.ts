/**
 * The SDK's ModelService drives `rock model-service` inside a real sandbox (local backend),
 * through a bundle of the CLI run with `deno run --no-config`, as a sandbox would: start, an agent
 * started in the sandbox and watched, anti-call-llm turns (one response large enough to go through
 * a file), SESSION_END when the agent exits, stop.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ModelService } from "../../src/sdk/model_service.ts";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { startAdminServer } from "../helpers/admin_server.ts";
import { TEST_IMAGE } from "../helpers/docker.ts";
import { completion } from "../helpers/llm_upstream.ts";

const ENTRY = fileURLToPath(new URL("../../main.ts", import.meta.url));

const AGENT = `
const [url, n] = Deno.args;
for (let i = 1; i <= Number(n); i++) {
  const r = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model: "p", messages: [{ role: "user", content: "task " + i }] }),
  });
  const text = (await r.json()).choices[0].message.content;
  console.log(i + ":" + text.length);
}
`;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test("ModelService runs the model service in a sandbox with no install step: start, watchAgent, antiCallLlm, stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-sdk-" });
  try {
    const bundled = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", ENTRY, "--output", `${dir}/rock-full.js`],
      stderr: "piped",
    }).output();
    assert.equal(bundled.code, 0, new TextDecoder().decode(bundled.stderr));

    await using admin = await startAdminServer("local");
    await using sandbox = await new Sandbox({ baseUrl: admin.url, image: TEST_IMAGE }).start();
    const port = freePort();
    const service = new ModelService(sandbox, {
      rockCommand:
        `${Deno.execPath()} run --allow-all --unstable-no-legacy-abort --no-config ${dir}/rock-full.js`,
      dataDir: `${dir}/data`,
      stateDir: `${dir}/state`,
      loggingPath: `${dir}/logs`,
      host: "127.0.0.1",
      port,
    });
    await service.start();
    try {
      assert.ok(service.started);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      assert.deepEqual(await health.json(), { status: "healthy" });

      await sandbox.writeFile(`${dir}/agent.ts`, AGENT);
      const launched = await sandbox.arun(
        `nohup ${Deno.execPath()} run -A ${dir}/agent.ts http://127.0.0.1:${port} 2 ` +
          `> ${dir}/agent.out 2>&1 < /dev/null & echo $!`,
      );
      const agentPid = Number(launched.output.trim());
      await service.watchAgent(agentPid);

      const first = await service.antiCallLlm(0, undefined, { callTimeout: 30 });
      assert.equal(JSON.parse(first).messages[0].content, "task 1");
      const big = JSON.stringify(completion("x".repeat(40_000)));
      const second = await service.antiCallLlm(1, big, { callTimeout: 30 });
      assert.equal(JSON.parse(second).messages[0].content, "task 2");
      const end = await service.antiCallLlm(2, JSON.stringify(completion("it's done")), {
        callTimeout: 30,
      });
      assert.equal(end, "SESSION_END");
      assert.equal(await Deno.readTextFile(`${dir}/agent.out`), "1:40000\n2:9\n");
      await assert.rejects(service.antiCallLlm(0, "{}"), /index 0 takes no response/);
    } finally {
      await service.stop();
    }
    assert.equal(service.started, false);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
