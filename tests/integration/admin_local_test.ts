import { defineAdminContract } from "../contracts/admin_contract.ts";

defineAdminContract("local", (name, fn) => Deno.test(name, fn));
