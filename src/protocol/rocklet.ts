/**
 * The rocklet's wire contract: requests as zod schemas with ROCK's snake_case names and defaults,
 * responses as types. Unknown request keys are ignored, as ROCK does.
 */
import * as z from "zod/mini";

const envMap = z.record(z.string(), z.string());
/** A check that a string holds no NUL. */
const noNul = () => z.refine<string>((s) => !s.includes("\0"), "must not contain NUL");
/** A non-empty string. */
const filled = () => z.string().check(z.minLength(1));

/** POST /create_session */
export const CreateSessionRequest = z.object({
  "session": z._default(filled().check(noNul()), "default"),
  "startup_source": z._default(z.array(z.string()), []),
  "env_enable": z._default(z.boolean(), false),
  "env": z.nullish(envMap),
  "remote_user": z.nullish(filled()),
  "startup_timeout": z._default(z.number().check(z.positive()), 1.0),
  "max_read_size": z._default(z.number().check(z.int(), z.positive()), 2000),
  "session_type": z._default(z.literal("bash"), "bash"),
  "sandbox_id": z.nullish(z.string()),
  /**
   * rock: run the shell on a pseudo-terminal (true, as ROCK's sessions do) or on pipes (false,
   * a command's stdin is then /dev/null). Absent: a pseudo-terminal where the system has one.
   */
  "pty": z.nullish(z.boolean()),
});
/** Parsed create_session request. */
export type CreateSessionRequest = z.output<typeof CreateSessionRequest>;

/** How run_in_session treats a non-zero exit code (ROCK's semantics). */
export const CheckMode = z.enum(["silent", "raise", "ignore"]);
/** One of silent, raise, ignore. */
export type CheckMode = z.output<typeof CheckMode>;

/** POST /run_in_session */
export const BashAction = z.object({
  "command": z.string().check(noNul()),
  "session": z._default(filled(), "default"),
  "timeout": z.nullish(z.number().check(z.positive())),
  "check": z._default(CheckMode, "raise"),
  "is_interactive_command": z._default(z.boolean(), false),
  "is_interactive_quit": z._default(z.boolean(), false),
  "error_msg": z._default(z.string(), ""),
  "expect": z._default(z.array(z.string()), []),
  "action_type": z._default(z.literal("bash"), "bash"),
  "sandbox_id": z.nullish(z.string()),
});
/** Parsed run_in_session request. */
export type BashAction = z.output<typeof BashAction>;
/** run_in_session request as a caller writes it (defaults optional). */
export type BashActionInput = z.input<typeof BashAction>;

/**
 * POST /run_in_session with `action_type: "bash_interrupt"` (SWE-ReX's BashInterruptAction):
 * interrupt whatever runs in the session. ROCK's SDKs never send it.
 */
export const BashInterruptAction = z.object({
  "action_type": z.literal("bash_interrupt"),
  "session": z._default(filled(), "default"),
  "timeout": z.nullish(z.number().check(z.positive())),
  "n_retry": z.nullish(z.int()),
  "expect": z._default(z.array(z.string()), []),
  "sandbox_id": z.nullish(z.string()),
});
/** Parsed bash_interrupt request. */
export type BashInterruptAction = z.output<typeof BashInterruptAction>;

/** True when a run_in_session body asks for an interrupt rather than a command. */
export function isInterruptAction(body: Record<string, unknown>): boolean {
  return body.action_type === "bash_interrupt";
}

/** POST /close_session */
export const CloseSessionRequest = z.object({
  "session": z._default(filled(), "default"),
  "session_type": z._default(z.literal("bash"), "bash"),
  "sandbox_id": z.nullish(z.string()),
});
/** Parsed close_session request. */
export type CloseSessionRequest = z.output<typeof CloseSessionRequest>;

/** POST /execute */
export const Command = z.object({
  "command": z.union([z.string().check(noNul()), z.array(z.string().check(noNul()))]),
  "timeout": z._default(z.nullish(z.number().check(z.positive())), 1200),
  "shell": z._default(z.boolean(), false),
  "check": z._default(z.boolean(), false),
  "error_msg": z._default(z.string(), ""),
  "env": z.nullish(envMap),
  "cwd": z.nullish(filled()),
  "sandbox_id": z.nullish(z.string()),
  /** SWE-ReX's: stderr joins stdout as the process writes them (in order); stderr is empty. */
  "merge_output_streams": z._default(z.boolean(), false),
});
/** Parsed execute request. */
export type Command = z.output<typeof Command>;

/** POST /read_file */
export const ReadFileRequest = z.object({
  "path": filled(),
  "encoding": z.nullish(z.string()),
  "errors": z.nullish(z.enum(["strict", "replace", "ignore"])),
  "sandbox_id": z.nullish(z.string()),
});
/** Parsed read_file request. */
export type ReadFileRequest = z.output<typeof ReadFileRequest>;

/** POST /write_file */
export const WriteFileRequest = z.object({
  "content": z.string(),
  "path": filled(),
  "sandbox_id": z.nullish(z.string()),
});
/** Parsed write_file request. */
export type WriteFileRequest = z.output<typeof WriteFileRequest>;

/** Form fields of POST /upload besides the `file` part. */
export const UploadFields = z.object({
  "target_path": filled(),
  "unzip": z.pipe(
    z._default(z.enum(["true", "false", "True", "False", "1", "0", ""]), "false"),
    z.transform((v) => v === "true" || v === "True" || v === "1"),
  ),
});

/** GET /is_alive */
export interface IsAliveResponse {
  /** True when the sandbox runs. */
  is_alive: boolean;
  /** A message (empty when there is nothing to say). */
  message: string;
}

/** GET /get_statistics: percentages of cpu, memory and `/` disk use, network bytes. */
export interface StatisticsResponse {
  /** CPU use in percent. */
  cpu: number;
  /** Memory use in percent. */
  mem: number;
  /** Use of / in percent. */
  disk: number;
  /** Network bytes received and sent. */
  net: number;
}

/** POST /create_session */
export interface CreateSessionResponse {
  /** What the command printed (stdout and stderr, in order). */
  output: string;
  /** Always "bash". */
  session_type: "bash";
}

/** POST /run_in_session */
export interface BashObservation {
  /** Always "bash". */
  session_type: "bash";
  /** What the command printed (stdout and stderr, in order). */
  output: string;
  /** Exit code of a failed command; null otherwise. */
  exit_code: number | null;
  /** Why it failed; null or empty when it did not. */
  failure_reason: string;
  /** The expect string that matched (interactive mode; always empty here). */
  expect_string: string;
}

/** POST /close_session */
export interface CloseSessionResponse {
  /** Always "bash". */
  session_type: "bash";
}

/** POST /execute */
export interface CommandResponse {
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** Exit code of a failed command; null otherwise. */
  exit_code: number | null;
}

/** POST /read_file */
export interface ReadFileResponse {
  /** The file's text. */
  content: string;
}

/** POST /write_file */
export interface WriteFileResponse {
  /** True when it worked. */
  success: boolean;
  /** A message (empty when there is nothing to say). */
  message: string;
}

/** POST /upload */
export interface UploadResponse {
  /** True when it worked. */
  success: boolean;
  /** A message (empty when there is nothing to say). */
  message: string;
  /** Name of the uploaded file. */
  file_name: string;
}

/** POST /close */
export type CloseResponse = Record<string, never>;

/** The body of an HTTP 511 reply: ROCK's serialized rocklet exception. */
export interface RockletExceptionBody {
  rockletexception: RockletException;
  /**
   * The same under the key SWE-ReX's RemoteRuntime reads, its `class_path` naming SWE-ReX's class
   * (`swerex.exceptions.CommandTimeoutError` for `rock.rocklet.exceptions.CommandTimeoutError`).
   */
  swerexception?: RockletException;
}

/** A serialized rocklet exception. */
export interface RockletException {
  message: string;
  class_path: string;
  traceback: string;
  extra_info: Record<string, unknown>;
  /** rock's extension: ROCK's code of the error (4xxx, 5xxx, 6xxx). */
  code?: number;
}

/** POST /env/make: make GEM environment `env_id`, keyed by `sandbox_id`. */
export const EnvMakeRequest = z.object({
  "env_id": filled(),
  "sandbox_id": filled(),
});
/** Parsed /env/make request. */
export type EnvMakeRequest = z.output<typeof EnvMakeRequest>;

/** POST /env/step: one action (any JSON value: gem environments mostly take text). */
export const EnvStepRequest = z.object({
  "sandbox_id": filled(),
  "action": z.unknown(),
});
/** Parsed /env/step request. */
export type EnvStepRequest = z.output<typeof EnvStepRequest>;

/** POST /env/reset */
export const EnvResetRequest = z.object({
  "sandbox_id": filled(),
  "seed": z.nullish(z.int()),
});
/** Parsed /env/reset request. */
export type EnvResetRequest = z.output<typeof EnvResetRequest>;

/** POST /env/close */
export const EnvCloseRequest = z.object({
  "sandbox_id": filled(),
});
/** Parsed /env/close request. */
export type EnvCloseRequest = z.output<typeof EnvCloseRequest>;

/** POST /env/make (and /env/close): the key the environment is kept under. */
export interface EnvMakeResponse {
  /** The sandbox the environment is kept under. */
  sandbox_id: string;
}

/** POST /env/close */
export type EnvCloseResponse = EnvMakeResponse;

/** POST /env/step: gymnasium's five values. */
export interface EnvStepResponse {
  /** What the environment shows after the action (any JSON value). */
  observation: unknown;
  /** The action's reward. */
  reward: number;
  /** True when the episode ended in a terminal state. */
  terminated: boolean;
  /** True when the episode was cut short (a step limit). */
  truncated: boolean;
  /** The environment's extra information. */
  info: Record<string, unknown>;
}

/** POST /env/reset */
export interface EnvResetResponse {
  /** The first observation of the episode. */
  observation: unknown;
  /** The environment's extra information. */
  info: Record<string, unknown>;
}

/** POST /env/list: the ids gem's registry knows. */
export interface EnvListResponse {
  /** Registered environment ids. */
  env_id: string[];
}
