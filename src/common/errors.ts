/**
 * Errors shared by every role. One base class carries ROCK's numeric code, the HTTP status a
 * server answers with, and the Python class path ROCK's rocklet puts on the wire, so servers
 * map errors in one place and clients can rebuild the same class from a reply.
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
  code?: number;
  /** HTTP status a server answers with. */
  status?: number;
  /** Python class path as ROCK's rocklet reports it in `rockletexception.class_path`. */
  classPath?: string;
  /** Structured details (`extra_info` on the wire). */
  extraInfo?: Record<string, unknown>;
  /** The underlying error. */
  cause?: unknown;
}

/** Base of every error rock raises on purpose. */
export class RockError extends Error {
  /** ROCK code (4xxx bad request, 5xxx internal, 6xxx command error). */
  readonly code: number;
  /** HTTP status a server answers with. */
  readonly status: number;
  /** Python class path used on the rocklet wire. */
  readonly classPath: string;
  /** Structured details (`extra_info` on the wire). */
  readonly extraInfo: Record<string, unknown>;

  /** Creates an error; defaults to an internal error (code 5000, HTTP 500). */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? Codes.INTERNAL_SERVER_ERROR;
    this.status = options.status ?? 500;
    this.classPath = options.classPath ?? "rock.rocklet.exceptions.RockletException";
    this.extraInfo = options.extraInfo ?? {};
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

/** A request that is malformed or names something invalid (code 4000, HTTP 422). */
export class BadRequestError extends RockError {
  /** Creates a bad-request error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, Codes.BAD_REQUEST, 422, "builtins.ValueError"));
  }
}

/** A configuration file, flag or environment variable holds a bad value. */
export class ConfigError extends RockError {
  /** Creates a configuration error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, Codes.BAD_REQUEST, 400, "builtins.ValueError"));
  }
}

/** A bash session with this name exists already. */
export class SessionExistsError extends RockError {
  /** Creates the error; put the session name in `extraInfo.session`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 511, "rock.rocklet.exceptions.SessionExistsError"));
  }
}

/** No bash session with this name exists (or its shell has exited). */
export class SessionNotFoundError extends RockError {
  /** Creates the error; put the session name in `extraInfo.session`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, 4000, 511, "rock.rocklet.exceptions.SessionDoesNotExistError"),
    );
  }
}

/** A command ran past its timeout; `output` holds what it printed until then. */
export class CommandTimeoutError extends RockError {
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
export class NonZeroExitCodeError extends RockError {
  /** Creates the error; put the code in `extraInfo.exit_code`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 6000, 511, "rock.rocklet.exceptions.NonZeroExitCodeError"));
  }
  /** The command's exit code. */
  get exitCode(): number {
    return Number(this.extraInfo.exit_code);
  }
}

/** A bash command does not parse; nothing of it ran. */
export class BashSyntaxError extends RockError {
  /** Creates the error; put bash's diagnostics in `extraInfo.bash_stderr`. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(
      message,
      defaults(options, 4000, 511, "rock.rocklet.exceptions.BashIncorrectSyntaxError"),
    );
  }
}

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
export class FileOperationError extends RockError {
  /** Creates the error; the class path (`builtins.<kind>`) says which kind of failure. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 511, "builtins.OSError"));
  }
  /** Which kind of failure, named as ROCK's Python runtime names it. */
  get kind(): FileErrorKind {
    return this.classPath.replace(/^builtins\./, "") as FileErrorKind;
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
export class CancelledError extends RockError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, defaults(options, 4000, 499, "asyncio.exceptions.CancelledError"));
  }
}

/** The peer (a rocklet, an admin, an engine) cannot be reached or answered garbage. */
export class UnavailableError extends RockError {
  /** Creates the error. */
  constructor(message: string, options: RockErrorOptions = {}) {
    super(message, withDefaults({ code: Codes.INTERNAL_SERVER_ERROR, status: 503 }, options));
  }
}

/** A rocklet that accepts connections but does not answer (frozen, overloaded) in time. */
export class UnresponsiveError extends UnavailableError {}

/** Returns the message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
