/**
 * The one error family of rock, shared by every role and the SDK. The base class carries ROCK's
 * numeric code, the HTTP status a server answers with, the Python class path ROCK puts on the
 * wire, and structured details (`extra_info`); servers put the class path and the details on the
 * wire beside the message, and clients rebuild the same class from them (`errorFromWire`), so
 * callers decide by type and fields, never by a message's words.
 *
 * The families follow ROCK's codes: BadRequestError (4xxx, the SDK's BadRequestRockError),
 * InternalServerError (5xxx, InternalServerRockError), CommandError (6xxx, CommandRockError).
 */
import { withDefaults } from "./options.ts";

/** ROCK's response codes (`rock/_codes.py`): ranges by thousand. */
export const Codes = {
  OK: 2000,
  BAD_REQUEST: 4000,
  INTERNAL_SERVER_ERROR: 5000,
  COMMAND_ERROR: 6000,
} as const;

/** Options accepted by every RockError constructor. */
export interface RockErrorOptions {
  /** ROCK code (4xxx bad request, 5xxx internal, 6xxx command error). */
  code?: number | undefined;
  /** HTTP status a server answers with. */
  status?: number | undefined;
  /** Python class path as ROCK reports it (`rockletexception.class_path`, the envelope's). */
  classPath?: string | undefined;
  /** Structured details (`extra_info` on the wire). */
  extraInfo?: Record<string, unknown> | undefined;
  /** The underlying error. */
  cause?: unknown | undefined;
  /** The sandbox the call was about (set by the SDK). */
  sandboxId?: string | undefined;
  /** The start phase that failed (`image_pull`, `docker_run`), for start failures. */
  phase?: string | undefined;
}

/** Base of every error rock raises on purpose. */
export class RockError extends Error {
  /** ROCK code (4xxx bad request, 5xxx internal, 6xxx command error). */
  readonly code: number;
  /** HTTP status a server answers with. */
  readonly status: number;
  /** Python class path used on the wire. */
  readonly classPath: string;
  /** Structured details (`extra_info` on the wire). */
  readonly extraInfo: Record<string, unknown>;
  /** The sandbox the call was about, when known. */
  readonly sandboxId?: string | undefined;
  /** The start phase that failed, for start failures. */
  readonly phase?: string | undefined;

  /** Creates an error; defaults to an internal error (code 5000, HTTP 500). */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? Codes.INTERNAL_SERVER_ERROR;
    this.status = options.status ?? 500;
    this.classPath = options.classPath ?? "rock.rocklet.exceptions.RockletException";
    this.extraInfo = options.extraInfo ?? {};
    this.sandboxId = options.sandboxId;
    this.phase = options.phase;
  }

  /** The command's exit code (`extra_info.exit_code`), or null when there is none. */
  get exitCode(): number | null {
    const code = this.extraInfo.exit_code;
    return typeof code === "number" ? code : null;
  }
}

/**
 * `options` over a RockError subclass's own defaults (an option given as undefined keeps the
 * default), so every subclass takes `(message, options)` like the base and clients can rebuild
 * any of them from a wire reply by class path.
 */
function defaults(
  options: RockErrorOptions,
  code: number,
  status: number,
  classPath: string,
): RockErrorOptions {
  return withDefaults({ code, status, classPath }, options);
}

/** A request that is malformed or refused (ROCK codes 4000-4999; HTTP 422 by default). */
export class BadRequestError extends RockError {
  /** Creates a bad-request error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, Codes.BAD_REQUEST, 422, "builtins.ValueError"));
  }
}

/** The server failed (ROCK codes 5000-5999). */
export class InternalServerError extends RockError {}

/** A command failed (ROCK codes 6000-6999): a timeout, a non-zero exit the caller refused. */
export class CommandError extends RockError {
  /** Creates a command error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.COMMAND_ERROR, 511, "rock.rocklet.exceptions.RockletException"),
    );
  }
}

/** A configuration file, flag or environment variable holds a bad value. */
export class ConfigError extends BadRequestError {
  /** Creates a configuration error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, Codes.BAD_REQUEST, 400, "rock.exceptions.ConfigError"));
  }
}

/** No sandbox with this id exists. */
export class SandboxNotFoundError extends BadRequestError {
  /** Creates the error; put the id in `extraInfo.sandbox_id`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.BAD_REQUEST, 422, "rock.admin.exceptions.SandboxNotFoundError"),
    );
  }
}

/**
 * A call needs a running sandbox but this one is stopped or failed (code 4000). The message
 * names the state, the reason and the stop time; `extraInfo` holds them (`state`,
 * `stop_reason`, `stop_time`, `failure_kind`).
 */
export class SandboxStoppedError extends BadRequestError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.BAD_REQUEST, 422, "rock.admin.exceptions.SandboxStoppedError"),
    );
  }
  /** "stopped" or "failed". */
  get state(): "stopped" | "failed" {
    return this.extraInfo.state === "failed" ? "failed" : "stopped";
  }
  /** Why it stopped, e.g. "expired: no keep-alive for 5 minutes" (null when none was recorded). */
  get stopReason(): string | null {
    return typeof this.extraInfo.stop_reason === "string" ? this.extraInfo.stop_reason : null;
  }
  /** When it stopped, ISO 8601 in the admin's time zone (null when none was recorded). */
  get stopTime(): string | null {
    return typeof this.extraInfo.stop_time === "string" ? this.extraInfo.stop_time : null;
  }
  /**
   * The class of its end (`user`, `timeout`, `oom`, `infra`, `expired`), or null when none was
   * recorded.
   */
  get failureKind(): string | null {
    return typeof this.extraInfo.failure_kind === "string" ? this.extraInfo.failure_kind : null;
  }
}

/** A sandbox did not start: a phase failed or the start timed out (`phase` names it). */
export class SandboxStartError extends InternalServerError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.INTERNAL_SERVER_ERROR, 500, "rock.sdk.exceptions.SandboxStartError"),
    );
  }
}

/** A bash session with this name exists already. */
export class SessionExistsError extends BadRequestError {
  /** Creates the error; put the session name in `extraInfo.session`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 511, "rock.rocklet.exceptions.SessionExistsError"));
  }
}

/** No bash session with this name exists (or its shell has exited). */
export class SessionNotFoundError extends BadRequestError {
  /** Creates the error; put the session name in `extraInfo.session`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, 4000, 511, "rock.rocklet.exceptions.SessionDoesNotExistError"),
    );
  }
}

/** A command ran past its timeout; `output` holds what it printed until then. */
export class CommandTimeoutError extends CommandError {
  /** Creates the error; put the output so far in `extraInfo.output`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 6000, 511, "rock.rocklet.exceptions.CommandTimeoutError"));
  }
  /** Output captured before the timeout. */
  get output(): string {
    return String(this.extraInfo.output ?? "");
  }
}

/** A command exited with a non-zero code while the caller asked to raise on that. */
export class NonZeroExitCodeError extends CommandError {
  /** Creates the error; put the code in `extraInfo.exit_code`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 6000, 511, "rock.rocklet.exceptions.NonZeroExitCodeError"));
  }
}

/**
 * A bash command does not parse; nothing of it ran. `extraInfo` holds bash's diagnostics
 * (`bash_stderr`) and where it stopped: `line` (of the command's text), `unexpected_token`
 * (null when the text ended early) and `unexpected_end` (true when bash ran out of input: an
 * open quote, here-document or compound command).
 */
export class BashSyntaxError extends BadRequestError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, 4000, 511, "rock.rocklet.exceptions.BashIncorrectSyntaxError"),
    );
  }
  /** The line of the command's text bash stopped at, when it said. */
  get line(): number | null {
    return typeof this.extraInfo.line === "number" ? this.extraInfo.line : null;
  }
  /** The token bash did not expect, when it named one. */
  get unexpectedToken(): string | null {
    const token = this.extraInfo.unexpected_token;
    return typeof token === "string" ? token : null;
  }
  /** True when the text ended before the command did (more lines may complete it). */
  get unexpectedEnd(): boolean {
    return this.extraInfo.unexpected_end === true;
  }
}

/** Python exception classes ROCK reports for failed file operations, as a list. */
export const FILE_ERROR_KINDS: readonly FileErrorKind[] = [
  "FileNotFoundError",
  "IsADirectoryError",
  "NotADirectoryError",
  "PermissionError",
  "FileExistsError",
  "UnicodeDecodeError",
  "OSError",
];

/** Python exception classes ROCK reports for failed file operations. */
export type FileErrorKind =
  | "FileNotFoundError"
  | "IsADirectoryError"
  | "NotADirectoryError"
  | "PermissionError"
  | "FileExistsError"
  | "UnicodeDecodeError"
  | "OSError";

/** A file operation failed (missing file, directory given as file, permission denied, ...). */
export class FileOperationError extends BadRequestError {
  /** Creates the error; the class path (`builtins.<kind>`) says which kind of failure. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 511, "builtins.OSError"));
  }
  /** Which kind of failure, named as ROCK's Python runtime names it. */
  get kind(): FileErrorKind {
    return this.classPath.slice("builtins.".length) as FileErrorKind;
  }
}

/** Builds a FileOperationError of `kind` about `path`. */
export function fileOperationError(
  message: string,
  kind: FileErrorKind,
  path: string,
): FileOperationError {
  return new FileOperationError(message, { classPath: `builtins.${kind}`, extraInfo: { path } });
}

/** The caller cancelled the call (the client disconnected); what ran was interrupted. */
export class CancelledError extends BadRequestError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 499, "asyncio.exceptions.CancelledError"));
  }
}

/** The peer (a rocklet, an admin, an engine) cannot be reached or answered garbage. */
export class UnavailableError extends InternalServerError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.INTERNAL_SERVER_ERROR, 503, "rock.exceptions.UnavailableError"),
    );
  }
}

/** A rocklet that accepts connections but does not answer (frozen, overloaded) in time. */
export class UnresponsiveError extends UnavailableError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.INTERNAL_SERVER_ERROR, 503, "rock.exceptions.UnresponsiveError"),
    );
  }
}

/** The sandbox has no python, or its python cannot import the `gem` package (GEM envs). */
export class GemUnavailableError extends BadRequestError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.BAD_REQUEST, 400, "rock.rocklet.exceptions.GemUnavailableError"),
    );
  }
}

/** No GEM environment was made for the sandbox id a call names. */
export class GemEnvNotFoundError extends BadRequestError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.BAD_REQUEST, 404, "rock.rocklet.exceptions.GemEnvNotFoundError"),
    );
  }
}

/**
 * A GEM environment's own code raised (make, reset, step, close); `extraInfo` holds the Python
 * `error_type` and `traceback`.
 */
export class GemEnvError extends InternalServerError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, Codes.INTERNAL_SERVER_ERROR, 500, "rock.rocklet.exceptions.GemEnvError"),
    );
  }
}

type ErrorClass = new (message: string, options?: RockErrorOptions) => RockError;

/** The classes a client rebuilds by the class path a server reports. */
const CLASSES_BY_PATH: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ["rock.rocklet.exceptions.SessionExistsError", SessionExistsError],
  ["rock.rocklet.exceptions.SessionDoesNotExistError", SessionNotFoundError],
  ["rock.rocklet.exceptions.CommandTimeoutError", CommandTimeoutError],
  ["rock.rocklet.exceptions.NonZeroExitCodeError", NonZeroExitCodeError],
  ["rock.rocklet.exceptions.BashIncorrectSyntaxError", BashSyntaxError],
  ["rock.admin.exceptions.SandboxNotFoundError", SandboxNotFoundError],
  ["rock.admin.exceptions.SandboxStoppedError", SandboxStoppedError],
  ["rock.sdk.exceptions.SandboxStartError", SandboxStartError],
  ["rock.exceptions.ConfigError", ConfigError],
  ["rock.exceptions.UnavailableError", UnavailableError],
  ["rock.exceptions.UnresponsiveError", UnresponsiveError],
  ["rock.rocklet.exceptions.GemUnavailableError", GemUnavailableError],
  ["rock.rocklet.exceptions.GemEnvNotFoundError", GemEnvNotFoundError],
  ["rock.rocklet.exceptions.GemEnvError", GemEnvError],
  ["asyncio.exceptions.CancelledError", CancelledError],
  ["builtins.ValueError", BadRequestError],
  // What ROCK's subprocess.run raises for an empty argv.
  ["builtins.IndexError", BadRequestError],
  ...FILE_ERROR_KINDS.map((kind): [string, ErrorClass] => [`builtins.${kind}`, FileOperationError]),
]);

/** An error as a server puts it on the wire. */
export interface WireError {
  /** The message. */
  message: string;
  /** ROCK's class path, when the server sent one. */
  class_path?: string | null | undefined;
  /** Structured details, when the server sent them. */
  extra_info?: Record<string, unknown> | null | undefined;
  /** ROCK's code, when the server sent one. */
  code?: number | null | undefined;
}

/** The class for ROCK code `code` when the class path names none (null: InternalServerError). */
function classOfCode(code: number | null | undefined): ErrorClass {
  if (code !== null && code !== undefined && code >= 4000 && code < 5000) return BadRequestError;
  if (code !== null && code !== undefined && code >= 6000 && code < 7000) return CommandError;
  return InternalServerError;
}

/**
 * Rebuilds the error a server reported: the class its class path names, else the family of its
 * code (4xxx BadRequestError, 6xxx CommandError, anything else InternalServerError).
 */
export function errorFromWire(wire: WireError, options: RockErrorOptions = {}): RockError {
  const type = (wire.class_path ? CLASSES_BY_PATH.get(wire.class_path) : undefined) ??
    classOfCode(wire.code);
  return new type(wire.message, {
    ...options,
    code: wire.code ?? undefined,
    classPath: wire.class_path ?? undefined,
    extraInfo: wire.extra_info ?? undefined,
  });
}

/** Returns the message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
