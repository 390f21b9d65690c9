/**
 * Local mode, the RL loop: an agent calls the model service as if it were an LLM, and a trainer
 * answers each call through the exchange file; the session ends when the agent process exits.
 * Start a local-mode service first, then run this with the same data dir:
 *
 *   ROCK_MODEL_SERVICE_DATA_DIR=/tmp/ms rock model-service start --type local --port 8080
 *   deno run -A examples/model_service/local_loop.ts http://127.0.0.1:8080 /tmp/ms [TURNS]
 *
 * The agent here is a small child process; a real one (an agent CLI in a sandbox) is pointed at
 * the service with OPENAI_BASE_URL=<url>/v1.
 */
import { TrainerSession } from "../../src/sdk/trainer_session.ts";

const [url = "http://127.0.0.1:8080", dataDir = "/data/logs", turns = "3"] = Deno.args;

// The agent: asks the "LLM" TURNS times, keeping the conversation, then exits.
const agentSource = `
const [url, turns] = Deno.args;
const messages = [{ role: "system", content: "You are a coding agent." }];
for (let i = 1; i <= Number(turns); i++) {
  messages.push({ role: "user", content: "step " + i });
  const response = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "policy", messages }),
  });
  messages.push((await response.json()).choices[0].message);
}
console.log("agent: done after " + turns + " calls");
`;
const agent = new Deno.Command(Deno.execPath(), { args: ["eval", agentSource, url, turns] })
  .spawn();

// SESSION_END is written when the agent process exits (ROCK: `rock model-service watch-agent`).
await fetch(`${url}/v1/agent/watch`, { method: "POST", body: JSON.stringify({ pid: agent.pid }) })
  .then((r) => r.body?.cancel());

// The trainer: one request at a time, in index order, until SESSION_END.
using session = TrainerSession.forDataDir(dataDir);
let answered = 0;
for await (const request of session) {
  const messages = request.body.messages as { role: string; content: string }[];
  const last = messages[messages.length - 1].content;
  const reply = `policy output for "${last}" (context of ${messages.length} messages)`;
  console.log(`call ${request.index}: ${last} -> ${reply}`);
  session.respond(request.index, {
    id: `chatcmpl-${request.index}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: "policy",
    choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
  });
  answered++;
}
await agent.status;
console.log(`session ended after ${answered} calls`);
