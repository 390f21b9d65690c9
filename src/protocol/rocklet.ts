/**
 * The rocklet's wire contract: requests as zod schemas with ROCK's snake_case names and defaults,
 * responses as types. Unknown request keys are ignored, as ROCK does.
 */
import { z } from "zod";

const envMap = z.record(z.string(), z.string());
const noNul = (s: string) => !s.includes("\0");

/** POST /create_session */
export const CreateSessionRequest = z.object({
  "session": z.string().min(1).refine(noNul, "must not contain NUL").default("default"),
  "startup_source": z.array(z.string()).default([]),
  "env_enable": z.boolean().default(false),
  "env": envMap.nullish(),
  "remote_user": z.string().min(1).nullish(),
  "startup_timeout": z.number().positive().default(1.0),
  "max_read_size": z.number().int().positive().default(2000),
  "session_type": z.literal("bash").default("bash"),
  "sandbox_id": z.string().nullish(),
});
/** Parsed create_session request. */
export type CreateSessionRequest = z.output<typeof CreateSessionRequest>;

/** How run_in_session treats a non-zero exit code (ROCK's semantics). */
export const CheckMode = z.enum(["silent", "raise", "ignore"]);
/** One of silent, raise, ignore. */
export type CheckMode = z.output<typeof CheckMode>;

/** POST /run_in_session */
export const BashAction = z.object({
  "command": z.string().refine(noNul, "must not contain NUL"),
  "session": z.string().min(1).default("default"),
  "timeout": z.number().positive().nullish(),
  "check": CheckMode.default("raise"),
  "is_interactive_command": z.boolean().default(false),
  "is_interactive_quit": z.boolean().default(false),
  "error_msg": z.string().default(""),
  "expect": z.array(z.string()).default([]),
  "action_type": z.literal("bash").default("bash"),
  "sandbox_id": z.string().nullish(),
});
/** Parsed run_in_session request. */
export type BashAction = z.output<typeof BashAction>;
/** run_in_session request as a caller writes it (defaults optional). */
export type BashActionInput = z.input<typeof BashAction>;

/** POST /close_session */
export const CloseSessionRequest = z.object({
  "session": z.string().min(1).default("default"),
  "session_type": z.literal("bash").default("bash"),
  "sandbox_id": z.string().nullish(),
});
/** Parsed close_session request. */
export type CloseSessionRequest = z.output<typeof CloseSessionRequest>;

/** POST /execute */
export const Command = z.object({
  "command": z.union([
    z.string().refine(noNul, "must not contain NUL"),
    z.array(z.string().refine(noNul, "must not contain NUL")),
  ]),
  "timeout": z.number().positive().nullish().default(1200),
  "shell": z.boolean().default(false),
  "check": z.boolean().default(false),
  "error_msg": z.string().default(""),
  "env": envMap.nullish(),
  "cwd": z.string().min(1).nullish(),
  "sandbox_id": z.string().nullish(),
});
/** Parsed execute request. */
export type Command = z.output<typeof Command>;

/** POST /read_file */
export const ReadFileRequest = z.object({
  "path": z.string().min(1),
  "encoding": z.string().nullish(),
  "errors": z.enum(["strict", "replace", "ignore"]).nullish(),
  "sandbox_id": z.string().nullish(),
});
/** Parsed read_file request. */
export type ReadFileRequest = z.output<typeof ReadFileRequest>;

/** POST /write_file */
export const WriteFileRequest = z.object({
  "content": z.string(),
  "path": z.string().min(1),
  "sandbox_id": z.string().nullish(),
});
/** Parsed write_file request. */
export type WriteFileRequest = z.output<typeof WriteFileRequest>;

/** Form fields of POST /upload besides the `file` part. */
export const UploadFields = z.object({
  "target_path": z.string().min(1),
  "unzip": z.enum(["true", "false", "True", "False", "1", "0", ""]).default("false")
    .transform((v) => v === "true" || v === "True" || v === "1"),
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
  rockletexception: {
    message: string;
    class_path: string;
    traceback: string;
    extra_info: Record<string, unknown>;
  };
}
