import { defineAgentContract } from "../contracts/agent_contract.ts";
import { hostToolTest } from "../helpers/host_tools.ts";

// The local backend's sandbox is this machine; its `system` runtime is node (see SYSTEM_RUNTIME).
defineAgentContract("local", (name, fn) => hostToolTest(["node"], name, fn));
