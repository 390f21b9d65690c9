/** The SDK's model service modules have no Deno API: their bundle runs a TrainerSession on Node. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { hostToolTest } from "../helpers/host_tools.ts";

const TRAINER = `
import { TrainerSession } from "./model_service.mjs";
import { appendFileSync, writeFileSync } from "node:fs";
const file = process.argv[2];
writeFileSync(file, "");
const session = TrainerSession.open(file);
setTimeout(() => appendFileSync(file,
  'LLM_REQUEST_START{"q":"from node"}LLM_REQUEST_END{"timestamp": 1, "index": 1}\\n'), 20);
setTimeout(() => appendFileSync(file, "SESSION_END\\n"), 100);
const seen = [];
for await (const request of session) {
  seen.push(request.body.q);
  session.respond(request.index, { choices: [] });
}
session.close();
console.log(JSON.stringify(seen));
`;

hostToolTest(
  ["node"],
  "the SDK's ModelService and TrainerSession bundle has no Deno API and runs on Node",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "rock-ms-node-" });
    try {
      const sdk = (name: string) =>
        fileURLToPath(new URL(`../../src/sdk/${name}`, import.meta.url));
      await Deno.writeTextFile(
        `${dir}/entry.ts`,
        `export * from "${sdk("model_service.ts")}";\nexport * from "${
          sdk("trainer_session.ts")
        }";\n`,
      );
      const built = await new Deno.Command(Deno.execPath(), {
        args: ["bundle", "--quiet", `${dir}/entry.ts`, "--output", `${dir}/model_service.mjs`],
        stderr: "piped",
      }).output();
      assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
      assert.ok(!(await Deno.readTextFile(`${dir}/model_service.mjs`)).includes("Deno."));
      await Deno.writeTextFile(`${dir}/main.mjs`, TRAINER);
      const run = await new Deno.Command("node", {
        args: [`${dir}/main.mjs`, `${dir}/LLMService.log`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      assert.equal(new TextDecoder().decode(run.stdout).trim(), '["from node"]');
      const lines = (await Deno.readTextFile(`${dir}/LLMService.log`)).trim().split("\n");
      assert.match(
        lines[1] ?? "",
        /^LLM_RESPONSE_START\{"choices":\[\]\}LLM_RESPONSE_END\{"timestamp": \d+, "index": 1\}$/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
