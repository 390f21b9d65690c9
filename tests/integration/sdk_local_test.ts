import { defineSdkContract } from "../contracts/sdk_contract.ts";

defineSdkContract("local", (name, fn) => Deno.test(name, fn));
