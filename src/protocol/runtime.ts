/**
 * What runs inside a sandbox. The in-process LocalRuntime implements it, the rocklet serves it
 * over HTTP, and RockletClient speaks it back, so one contract suite covers both.
 */
import type {
  BashAction,
  BashActionInput,
  BashInterruptAction,
  BashObservation,
  CloseResponse,
  CloseSessionResponse,
  CommandResponse,
  CreateSessionResponse,
  EnvCloseRequest,
  EnvCloseResponse,
  EnvListResponse,
  EnvMakeRequest,
  EnvMakeResponse,
  EnvResetRequest,
  EnvResetResponse,
  EnvStepRequest,
  EnvStepResponse,
  IsAliveResponse,
  ReadFileResponse,
  StatisticsResponse,
  UploadResponse,
  WriteFileResponse,
} from "./rocklet.ts";
import type { z } from "zod";
import type {
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  ReadFileRequest,
  WriteFileRequest,
} from "./rocklet.ts";

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call; a running command is interrupted and its session stays usable. */
  signal?: AbortSignal | undefined;
  /**
   * Receives the command's output as it is printed (run_in_session: `output`, stdout and stderr
   * in order; execute: `stdout` and `stderr` apart); the call's result is the same as without.
   * Over HTTP this is the `Accept: text/event-stream` form (src/formats/live_output.ts).
   */
  onOutput?: OnOutput | undefined;
}

import type { OutputStream } from "../formats/live_output.ts";
export type { OutputStream };

/** A receiver of live output. */
export type OnOutput = (stream: OutputStream, text: string) => void;

/** What an upload writes. */
export interface UploadOptions {
  /** Destination file (or directory when `unzip`). Parent directories are created. */
  targetPath: string;
  /** Treat the data as a zip archive and extract it into `targetPath`. */
  unzip?: boolean;
  /** Name reported back as `file_name` (defaults to the target's base name). */
  fileName?: string | undefined;
}

/** A file streamed out of the sandbox. */
export interface Download {
  /** The file's bytes. Consume or cancel it. */
  body: ReadableStream<Uint8Array>;
  /** Size in bytes. */
  size: number;
}

/**
 * The operations a sandbox runtime offers (ROCK's rocklet routes plus a streaming download),
 * taking requests already validated: only servers parse the wire (the rocklet's and the admin's
 * routes), once, at their edge.
 */
export interface Runtime {
  /** Reports that the runtime answers. */
  isAlive(): Promise<IsAliveResponse>;
  /** Cpu, memory, disk and network use of the machine the runtime runs on. */
  getStatistics(): Promise<StatisticsResponse>;
  /** Starts a persistent bash session. */
  createSession(request: CreateSessionRequest): Promise<CreateSessionResponse>;
  /** Runs a command in a session and returns its output and exit code. */
  runInSession(action: BashAction, options?: CallOptions): Promise<BashObservation>;
  /**
   * Interrupts whatever runs in a session (SWE-ReX's bash_interrupt): the running command's own
   * call ends cancelled; the session stays usable.
   */
  interruptSession(action: BashInterruptAction): Promise<BashObservation>;
  /** Ends a session and every process it started in the foreground. */
  closeSession(request: CloseSessionRequest): Promise<CloseSessionResponse>;
  /** Runs one process to completion, stdout and stderr apart. */
  execute(command: Command, options?: CallOptions): Promise<CommandResponse>;
  /** Reads a text file. */
  readFile(request: ReadFileRequest): Promise<ReadFileResponse>;
  /** Writes a text file, creating parent directories. */
  writeFile(request: WriteFileRequest): Promise<WriteFileResponse>;
  /** Streams bytes into a file (or extracts a zip into a directory). */
  upload(data: ReadableStream<Uint8Array>, options: UploadOptions): Promise<UploadResponse>;
  /** Streams a file's bytes out. */
  download(path: string): Promise<Download>;
  /** Closes every session. */
  close(): Promise<CloseResponse>;
  /** Makes GEM environment `env_id` in the sandbox, kept under `sandbox_id` (ROCK's key). */
  envMake(request: EnvMakeRequest): Promise<EnvMakeResponse>;
  /** Steps the GEM environment kept under `sandbox_id`. */
  envStep(request: EnvStepRequest): Promise<EnvStepResponse>;
  /** Resets the GEM environment kept under `sandbox_id`, with `seed` when given. */
  envReset(request: EnvResetRequest): Promise<EnvResetResponse>;
  /** Closes the GEM environment kept under `sandbox_id`. */
  envClose(request: EnvCloseRequest): Promise<EnvCloseResponse>;
  /** The environment ids the sandbox's gem package registers. */
  envList(): Promise<EnvListResponse>;
}

/**
 * A Runtime as a client offers it: requests as callers write them (ROCK's defaults may be left
 * out), validated by the server that receives them. RockletClient implements it; it is a Runtime
 * too, since a validated request is a valid input.
 */
export interface RuntimeClient extends
  Omit<
    Runtime,
    | "createSession"
    | "runInSession"
    | "interruptSession"
    | "closeSession"
    | "execute"
    | "readFile"
    | "writeFile"
  > {
  /** Starts a persistent bash session. */
  createSession(request: z.input<typeof CreateSessionRequest>): Promise<CreateSessionResponse>;
  /** Runs a command in a session and returns its output and exit code. */
  runInSession(action: BashActionInput, options?: CallOptions): Promise<BashObservation>;
  /** Interrupts whatever runs in a session. */
  interruptSession(
    action: z.input<typeof BashInterruptAction>,
  ): Promise<BashObservation>;
  /** Ends a session and every process it started in the foreground. */
  closeSession(request: z.input<typeof CloseSessionRequest>): Promise<CloseSessionResponse>;
  /** Runs one process to completion, stdout and stderr apart. */
  execute(command: z.input<typeof Command>, options?: CallOptions): Promise<CommandResponse>;
  /** Reads a text file. */
  readFile(request: z.input<typeof ReadFileRequest>): Promise<ReadFileResponse>;
  /** Writes a text file, creating parent directories. */
  writeFile(request: z.input<typeof WriteFileRequest>): Promise<WriteFileResponse>;
}
