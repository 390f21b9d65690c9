import { defineSdkContract } from "../contracts/sdk_contract.ts";
import { dockerTest } from "../helpers/docker.ts";

defineSdkContract("docker", dockerTest);
