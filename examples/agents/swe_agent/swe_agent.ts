/**
 * SWE-agent in a sandbox. Fill in rock_agent_config.yaml first; needs internet in the sandbox and
 * git in the image.
 *
 *   deno run -A examples/agents/swe_agent/swe_agent.ts [ADMIN_URL] [IMAGE] [PROMPT]
 */
import { runAgentExample } from "../run_agent.ts";

Deno.exit(await runAgentExample(new URL("./rock_agent_config.yaml", import.meta.url), Deno.args));
