import assert from "node:assert/strict";
import {
  BadRequestError,
  BashSyntaxError,
  CommandError,
  CommandTimeoutError,
  errorFromWire,
  FileOperationError,
  InternalServerError,
  SandboxStoppedError,
} from "../../src/common/errors.ts";
import { envelopeError } from "../../src/sdk/errors.ts";
import { syntaxDetails } from "../../src/runtime/bash_session.ts";

Deno.test("errorFromWire() rebuilds the class a class path names, else the family of the code", () => {
  const timeout = errorFromWire({
    message: "slow",
    class_path: "rock.rocklet.exceptions.CommandTimeoutError",
    extra_info: { output: "partial" },
  });
  assert.ok(timeout instanceof CommandTimeoutError);
  assert.deepEqual([timeout.code, timeout.output], [6000, "partial"]);
  const missing = errorFromWire({ message: "gone", class_path: "builtins.FileNotFoundError" });
  assert.ok(missing instanceof FileOperationError);
  assert.equal(missing.kind, "FileNotFoundError");
  assert.ok(errorFromWire({ message: "x", code: 4001 }) instanceof BadRequestError);
  assert.ok(errorFromWire({ message: "x", code: 6001 }) instanceof CommandError);
  assert.ok(
    errorFromWire({ message: "x", class_path: "some.Other" }) instanceof InternalServerError,
  );
});

Deno.test("envelopeError() reads ROCK's envelope (no class path) by its code and stop fields", () => {
  const command = envelopeError({
    message: "run in session failed",
    error: "boom",
    result: { code: 6000, exit_code: 3, failure_reason: "boom" },
  }, "sb-1");
  assert.ok(command instanceof CommandError);
  assert.deepEqual([command.exitCode, command.sandboxId, command.message], [3, "sb-1", "boom"]);
  const stopped = envelopeError({
    message: "x failed",
    error: "stopped",
    result: { code: 4000, state: "stopped", stop_reason: "expired", stop_time: "t" },
  });
  assert.ok(stopped instanceof SandboxStoppedError);
  assert.deepEqual([stopped.state, stopped.stopReason, stopped.stopTime], [
    "stopped",
    "expired",
    "t",
  ]);
  const syntax = envelopeError({
    message: "x failed",
    error: "bad",
    result: {
      code: 4000,
      class_path: "rock.rocklet.exceptions.BashIncorrectSyntaxError",
      extra_info: { line: 2, unexpected_token: "fi", unexpected_end: false },
    },
  });
  assert.ok(syntax instanceof BashSyntaxError);
  assert.equal(syntax.line, 2);
});

Deno.test("syntaxDetails() reads bash's line, unexpected token and early end", () => {
  assert.deepEqual(
    syntaxDetails("bash: line 3: syntax error near unexpected token `fi'\nbash: line 3: `fi'"),
    { line: 3, unexpected_token: "fi", unexpected_end: false },
  );
  assert.deepEqual(
    syntaxDetails(
      "bash: line 1: unexpected EOF while looking for matching `''\n" +
        "bash: line 2: syntax error: unexpected end of file",
    ),
    { line: 1, unexpected_token: null, unexpected_end: true },
  );
});
