/**
 * iFlow CLI whose LLM calls land in the in-sandbox model service in local mode; this script is
 * the trainer and answers each call (here with a fixed reply; an RL trainer would call its
 * policy). Fill in rock_agent_config.yaml first; installing iFlow needs internet in the sandbox.
 * The same flow, with a stand-in agent instead of iFlow, is tested offline in
 * tests/contracts/agent_contract.ts.
 *
 *   deno run -A examples/agents/model_service/local/local.ts [ADMIN_URL] [IMAGE] [PROMPT]
 */
import { fileURLToPath } from "node:url";
import { ModelService, RockAgent, Sandbox } from "../../../../src/sdk/mod.ts";

const [baseUrl, image, prompt = "Hello"] = Deno.args;
await using sandbox = new Sandbox({ baseUrl, image, memory: "2g", cpus: 1 });
const config = fileURLToPath(new URL("./rock_agent_config.yaml", import.meta.url));
const agent = await RockAgent.fromFile(sandbox, config);
await sandbox.start();
await agent.install();
const running = agent.run(prompt);
const trainer = new ModelService(sandbox);
let index = 0;
let request = await trainer.antiCallLlm(0);
while (request !== "SESSION_END") {
  index++;
  console.error(`[trainer] call ${index}: ${request.slice(0, 200)}`);
  const reply = {
    choices: [{
      index: 0,
      message: { role: "assistant", content: "Done." },
      finish_reason: "stop",
    }],
  };
  request = await trainer.antiCallLlm(index, JSON.stringify(reply));
}
const result = await running;
console.log(result.output);
console.log(`[agent] exit code ${result.exitCode}, ${index} calls answered`);
