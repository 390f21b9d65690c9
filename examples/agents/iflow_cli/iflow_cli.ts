/**
 * iFlow CLI in a sandbox. Fill in rock_agent_config.yaml first; needs internet in the sandbox.
 *
 *   deno run -A examples/agents/iflow_cli/iflow_cli.ts [ADMIN_URL] [IMAGE] [PROMPT]
 */
import { runAgentExample } from "../run_agent.ts";

Deno.exit(await runAgentExample(new URL("./rock_agent_config.yaml", import.meta.url), Deno.args));
