/**
 * The errors the SDK throws: rock's one error family (`common/errors.ts`) under the names ROCK's
 * Python SDK uses (BadRequestRockError for 4xxx, InternalServerRockError for 5xxx,
 * CommandRockError for 6xxx), and the mapping of a Failed admin envelope to the class the admin
 * reported. Callers catch by class (CommandTimeoutError, SessionExistsError, BashSyntaxError,
 * SandboxNotFoundError, SandboxStoppedError, ...), never by a message's words.
 */
import {
  errorFromWire,
  type RockError,
  type RockErrorOptions,
  SandboxStoppedError,
} from "../common/errors.ts";
import type { FailureResult } from "../protocol/admin.ts";

export {
  BadRequestError,
  BadRequestError as BadRequestRockError,
  BashSyntaxError,
  CancelledError,
  CommandError,
  CommandError as CommandRockError,
  CommandTimeoutError,
  FileOperationError,
  GemEnvError,
  GemEnvNotFoundError,
  GemUnavailableError,
  InternalServerError,
  InternalServerError as InternalServerRockError,
  NonZeroExitCodeError,
  RockError,
  RockError as RockSdkError,
  SandboxNotFoundError,
  SandboxStartError,
  SandboxStoppedError,
  SandboxStoppedError as SandboxStoppedRockError,
  SessionExistsError,
  SessionNotFoundError,
  UnavailableError,
  UnresponsiveError,
} from "../common/errors.ts";
export type { FileErrorKind, RockErrorOptions } from "../common/errors.ts";

/** A Failed envelope as the SDK reads it. */
export interface FailedEnvelope {
  message: string;
  error: string | null;
  result: unknown;
}

/**
 * The error of a Failed admin envelope: the class its `result.class_path` names (rock's admin),
 * else SandboxStoppedError when `result` says the sandbox is stopped or failed, else the family
 * of its code (ROCK's admin sends no class path).
 */
export function envelopeError(envelope: FailedEnvelope, sandboxId?: string): RockError {
  const result = (envelope.result ?? {}) as Partial<FailureResult>;
  const message = envelope.error ?? envelope.message ?? "request failed";
  const extraInfo: Record<string, unknown> = { ...result.extra_info };
  if (typeof result.exit_code === "number") extraInfo.exit_code ??= result.exit_code;
  if ("stop_reason" in result) {
    extraInfo.state ??= result.state;
    extraInfo.stop_reason ??= result.stop_reason;
    extraInfo.stop_time ??= result.stop_time;
    if (result.failure_kind !== undefined) extraInfo.failure_kind ??= result.failure_kind;
  }
  const stopped = !result.class_path && (result.state === "stopped" || result.state === "failed") &&
    "stop_reason" in result;
  if (stopped) return new SandboxStoppedError(message, { code: result.code, extraInfo, sandboxId });
  return errorFromWire({
    message,
    class_path: result.class_path,
    extra_info: extraInfo,
    code: result.code ?? null,
  }, { sandboxId });
}

/**
 * Builds the error family for ROCK `code` (4xxx BadRequestRockError, 6xxx CommandRockError,
 * anything else InternalServerRockError).
 */
export function errorForCode(
  code: number | null | undefined,
  message: string,
  options: RockErrorOptions = {},
): RockError {
  return errorFromWire({ message, code }, options);
}
