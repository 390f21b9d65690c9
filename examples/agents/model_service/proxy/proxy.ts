/**
 * iFlow CLI whose LLM calls go through the in-sandbox model service in proxy mode, which forwards
 * them to the endpoint in start_cmd and records the trajectory. Fill in rock_agent_config.yaml
 * first; needs internet in the sandbox and an API key.
 *
 *   deno run -A examples/agents/model_service/proxy/proxy.ts [ADMIN_URL] [IMAGE] [PROMPT]
 */
import { runAgentExample } from "../../run_agent.ts";

Deno.exit(await runAgentExample(new URL("./rock_agent_config.yaml", import.meta.url), Deno.args));
