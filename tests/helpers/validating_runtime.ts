/**
 * A Runtime that validates its requests first, as the rocklet's routes do: what tests call when
 * they drive a LocalRuntime directly with requests as a client writes them.
 */
import {
  BashAction,
  BashInterruptAction,
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  EnvCloseRequest,
  EnvMakeRequest,
  EnvResetRequest,
  EnvStepRequest,
  ReadFileRequest,
  WriteFileRequest,
} from "../../src/protocol/rocklet.ts";
import type { Runtime, RuntimeClient } from "../../src/protocol/runtime.ts";
import { parseWire } from "../../src/protocol/validate.ts";

/** `runtime` behind the rocklet's validation, with the client's request types. */
export function validating(runtime: Runtime): RuntimeClient {
  return {
    isAlive: () => runtime.isAlive(),
    getStatistics: () => runtime.getStatistics(),
    createSession: async (request) =>
      await runtime.createSession(
        parseWire(CreateSessionRequest, request, "create_session request"),
      ),
    runInSession: async (action, options) =>
      await runtime.runInSession(
        parseWire(BashAction, action, "run_in_session request"),
        options,
      ),
    interruptSession: async (action) =>
      await runtime.interruptSession(
        parseWire(BashInterruptAction, action, "run_in_session request"),
      ),
    closeSession: async (request) =>
      await runtime.closeSession(parseWire(CloseSessionRequest, request, "close_session request")),
    execute: async (command, options) =>
      await runtime.execute(parseWire(Command, command, "execute request"), options),
    readFile: async (request) =>
      await runtime.readFile(parseWire(ReadFileRequest, request, "read_file request")),
    writeFile: async (request) =>
      await runtime.writeFile(parseWire(WriteFileRequest, request, "write_file request")),
    upload: (data, options) => runtime.upload(data, options),
    download: (path) => runtime.download(path),
    close: () => runtime.close(),
    envMake: async (request) =>
      await runtime.envMake(parseWire(EnvMakeRequest, request, "env/make request")),
    envStep: async (request) =>
      await runtime.envStep(parseWire(EnvStepRequest, request, "env/step request")),
    envReset: async (request) =>
      await runtime.envReset(parseWire(EnvResetRequest, request, "env/reset request")),
    envClose: async (request) =>
      await runtime.envClose(parseWire(EnvCloseRequest, request, "env/close request")),
    envList: () => runtime.envList(),
  };
}
