import { defineAgentContract } from "../contracts/agent_contract.ts";
import { dockerTest } from "../helpers/docker.ts";

defineAgentContract("docker", dockerTest);
