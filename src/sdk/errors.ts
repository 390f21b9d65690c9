/**
 * Errors the SDK throws, mapped from ROCK's response codes: 4xxx BadRequestRockError (and its
 * SandboxStoppedRockError when the sandbox no longer runs), 5xxx InternalServerRockError, 6xxx
 * CommandRockError. Each carries the sandbox id and, for start failures, the phase that failed.
 */
import { RockError, type RockErrorOptions } from "../common/errors.ts";
import { withDefaults } from "../common/options.ts";
import type { SandboxState } from "../protocol/admin.ts";

/** Context every SDK error carries. */
export interface SdkErrorContext {
  /** The sandbox the call was about. */
  sandboxId?: string;
  /** The start phase that failed (`image_pull`, `docker_run`), for start failures. */
  phase?: string;
  /** The command's exit code, for command errors. */
  exitCode?: number | null;
}

/** Base of the SDK's errors: a RockError with the sandbox id and phase. */
export class RockSdkError extends RockError {
  /** The sandbox the call was about. */
  readonly sandboxId?: string;
  /** The start phase that failed. */
  readonly phase?: string;
  /** The command's exit code, when a command failed. */
  readonly exitCode: number | null;

  /** Creates the error. */
  constructor(message: string, context: SdkErrorContext = {}, options: RockErrorOptions = {}) {
    super(message, options);
    this.sandboxId = context.sandboxId;
    this.phase = context.phase;
    this.exitCode = context.exitCode ?? null;
  }
}

/** The request was refused (ROCK codes 4000-4999): bad input, unknown sandbox, over limits. */
export class BadRequestRockError extends RockSdkError {
  /** Creates the error (code 4000 and HTTP 400 unless `options` say otherwise). */
  constructor(message: string, context: SdkErrorContext = {}, options: RockErrorOptions = {}) {
    super(message, context, withDefaults({ code: 4000, status: 400 }, options));
  }
}
/** Why and when a sandbox stopped, as a SandboxStoppedRockError carries it. */
export interface SandboxStopContext extends SdkErrorContext {
  /** "stopped" or "failed". */
  state: SandboxState;
  /** Why, e.g. "expired: no keep-alive for 5 minutes" (null when the admin recorded none). */
  stopReason: string | null;
  /** When, ISO 8601 in the admin's time zone (null when the admin recorded none). */
  stopTime: string | null;
}

/**
 * A call needed a running sandbox but it is stopped or failed (a 4xxx refusal); the message
 * names the state, the reason and the stop time, and so do the fields.
 */
export class SandboxStoppedRockError extends BadRequestRockError {
  /** "stopped" or "failed". */
  readonly state: SandboxState;
  /** Why it stopped, e.g. "expired: no keep-alive for 5 minutes". */
  readonly stopReason: string | null;
  /** When it stopped, ISO 8601 in the admin's time zone. */
  readonly stopTime: string | null;

  /** Creates the error. */
  constructor(message: string, context: SandboxStopContext, options: RockErrorOptions = {}) {
    super(message, context, options);
    this.state = context.state;
    this.stopReason = context.stopReason;
    this.stopTime = context.stopTime;
  }
}
/** The server failed (ROCK codes 5000-5999), or could not be reached. */
export class InternalServerRockError extends RockSdkError {}
/** A command failed (ROCK codes 6000-6999): non-zero exit with check, timeout. */
export class CommandRockError extends RockSdkError {
  /** Creates the error (code 6000 and HTTP 200 unless `options` say otherwise). */
  constructor(message: string, context: SdkErrorContext = {}, options: RockErrorOptions = {}) {
    super(message, context, withDefaults({ code: 6000, status: 200 }, options));
  }
}
/** A sandbox did not start: a phase failed or the start timed out. */
export class SandboxStartError extends InternalServerRockError {}

/** Builds the error class for ROCK `code` (null and 2xxx give InternalServerRockError). */
export function errorForCode(
  code: number | null | undefined,
  message: string,
  context: SdkErrorContext = {},
): RockSdkError {
  const options = { code: code ?? 5000 };
  if (code !== null && code !== undefined && code >= 4000 && code < 5000) {
    return new BadRequestRockError(message, context, { ...options, status: 400 });
  }
  if (code !== null && code !== undefined && code >= 6000 && code < 7000) {
    return new CommandRockError(message, context, { ...options, status: 200 });
  }
  return new InternalServerRockError(message, context, { ...options, status: 500 });
}
