/**
 * An offline agent: runs anywhere, no internet or API key needed.
 *
 *   deno run -A examples/agents/hello_agent/hello_agent.ts [ADMIN_URL] [IMAGE] [PROMPT]
 */
import { runAgentExample } from "../run_agent.ts";

Deno.exit(
  await runAgentExample(new URL("./rock_agent_config.yaml", import.meta.url), Deno.args, {
    image: "python:3.11",
    prompt: "say hello",
  }),
);
