import { defineAdminContract } from "../contracts/admin_contract.ts";
import { dockerTest } from "../helpers/docker.ts";

defineAdminContract("docker", (name, fn) => dockerTest(name, fn));
