import { defineAgentContract } from "../contracts/agent_contract.ts";

defineAgentContract("local", (name, fn) => Deno.test(name, fn));
