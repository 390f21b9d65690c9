/**
 * One set of expectations for every Runtime: the in-process LocalRuntime and a rocklet reached
 * over HTTP through RockletClient. Real bash, real files, real sockets.
 */
import assert from "node:assert/strict";
import { seededBytes, sha256Hex } from "../helpers/bytes.ts";
import { waitUntil } from "../helpers/wait.ts";
import { commandLines } from "../helpers/process.ts";
import {
  BadRequestError,
  BashSyntaxError,
  CancelledError,
  CommandTimeoutError,
  FileOperationError,
  NonZeroExitCodeError,
  RockError,
  SessionExistsError,
  SessionNotFoundError,
} from "../../src/common/errors.ts";
import type { RuntimeClient } from "../../src/protocol/runtime.ts";
import { zipDirectory } from "../../src/formats/zip_writer.ts";

/** A runtime under test and how to dispose of it. */
export interface RuntimeFixture extends AsyncDisposable {
  runtime: RuntimeClient;
}

/**
 * Builds a fresh runtime; `maxOutputBytes` overrides the output cap. Its base environment must
 * hold `ROCK_CONTRACT_PARENT=from-parent` (see contractBaseEnv).
 */
export type RuntimeFactory = (
  options?: { maxOutputBytes?: number | undefined },
) => Promise<RuntimeFixture>;

const isRoot = Deno.uid() === 0;

/** The base environment every fixture's runtime must use. */
export function contractBaseEnv(): Record<string, string> {
  return { ...Deno.env.toObject(), ROCK_CONTRACT_PARENT: "from-parent" };
}

function streamOf(data: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close();
      controller.enqueue(data.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function rejects<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
  check?: (error: T) => void,
): Promise<T> {
  try {
    await promise;
  } catch (error) {
    assert.ok(
      error instanceof type,
      `expected ${type.name}, got ${(error as Error)?.constructor?.name}: ${error}`,
    );
    check?.(error);
    return error;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

/** A `sleep` command no other test (or parallel test file) runs: its argument is random. */
function uniqueSleep(): string {
  return `sleep 30.${String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0")}`;
}

/** Processes whose command line contains `marker` (to prove nothing was left behind). */
async function processesWith(marker: string): Promise<number> {
  return (await commandLines()).filter((line) => line.includes(marker)).length;
}

/** Registers the contract tests for `label` with `Deno.test`. */
export function defineRuntimeContract(label: string, factory: RuntimeFactory): void {
  const test = (
    name: string,
    fn: (runtime: RuntimeClient) => Promise<void>,
    options: { maxOutputBytes?: number; ignore?: boolean } = {},
  ) =>
    Deno.test({
      name: `${label}: ${name}`,
      ignore: options.ignore ?? false,
      fn: async () => {
        await using fixture = await factory({ maxOutputBytes: options.maxOutputBytes });
        await fn(fixture.runtime);
      },
    });

  test("runInSession() returns exit codes 0, 1, 3 and 127 exactly", async (rt) => {
    await rt.createSession({ session: "s" });
    const codes = [];
    for (const command of ["true", "false", "f() { return 3; }; f", "no-such-command-xyz"]) {
      codes.push((await rt.runInSession({ session: "s", command, check: "silent" })).exit_code);
    }
    assert.deepEqual(codes, [0, 1, 3, 127]);
    const missing = await rt.runInSession({
      session: "s",
      command: "no-such-command-xyz",
      check: "silent",
    });
    assert.match(missing.output, /no-such-command-xyz: command not found/);
  });

  test("runInSession() cancelled the moment it is sent leaves the session usable", async (rt) => {
    // The interrupt lands while bash still reads the session's first command: it must not end
    // the shell.
    for (let i = 0; i < 10; i++) {
      const session = `s${i}`;
      await rt.createSession({ session });
      const controller = new AbortController();
      const call = rt.runInSession({ session, command: "sleep 5" }, { signal: controller.signal });
      controller.abort();
      await call.then(() => {}, () => {});
      assert.equal((await rt.runInSession({ session, command: "echo alive" })).output, "alive");
    }
  });

  test("runInSession() check modes: raise throws, silent returns the code, ignore returns null", async (rt) => {
    await rt.createSession({ session: "s" });
    const error = await rejects(
      rt.runInSession({
        session: "s",
        command: "echo out; exit_7() { return 7; }; exit_7",
        error_msg: "step",
      }),
      NonZeroExitCodeError,
    );
    assert.equal(error.exitCode, 7);
    assert.equal(
      error.message,
      "step: Command 'echo out; exit_7() { return 7; }; exit_7' failed with exit code 7. Here is the output:\n'out'",
    );
    assert.equal(
      (await rt.runInSession({ session: "s", command: "(exit 5)", check: "silent" })).exit_code,
      5,
    );
    const ignored = await rt.runInSession({
      session: "s",
      command: "echo hi; (exit 5)",
      check: "ignore",
    });
    assert.equal(ignored.exit_code, null);
    assert.equal(ignored.output, "hi");
    assert.equal((await rt.runInSession({ session: "s", command: "echo fine" })).exit_code, 0);
  });

  test("runInSession() keeps cwd, variables and functions between commands", async (rt) => {
    await rt.createSession({ session: "s" });
    await rt.runInSession({
      session: "s",
      command: "cd /tmp && declare -x KEPT=yes && greet() { echo hi $1; }",
    });
    const result = await rt.runInSession({ session: "s", command: "pwd; echo $KEPT; greet you" });
    assert.equal(result.output, "/tmp\nyes\nhi you");
  });

  test("runInSession() raises CommandTimeoutError with the output so far, and the session still works", async (rt) => {
    await rt.createSession({ session: "s" });
    await rt.runInSession({ session: "s", command: "cd /tmp; STATE=kept" });
    const started = performance.now();
    const error = await rejects(
      rt.runInSession({ session: "s", command: "echo before; sleep 30; echo after", timeout: 0.5 }),
      CommandTimeoutError,
    );
    // A hang guard: the command would sleep 30 s if the timeout did not interrupt it.
    assert.ok(performance.now() - started < 20_000, "the timeout must interrupt the command");
    assert.equal(error.output, "before");
    const loop = await rejects(
      rt.runInSession({ session: "s", command: "while :; do :; done", timeout: 0.3 }),
      CommandTimeoutError,
    );
    assert.match(loop.message, /timed out after 0.3 s/);
    const sleep = uniqueSleep();
    const stubborn = `trap '' INT; ${sleep}`;
    await rejects(
      rt.runInSession({ session: "s", command: stubborn, timeout: 0.3 }),
      CommandTimeoutError,
    );
    const after = await rt.runInSession({ session: "s", command: "echo $STATE; pwd" });
    assert.equal(after.output, "kept\n/tmp");
    assert.equal(
      await processesWith(sleep),
      0,
      "the command that ignored SIGINT was killed",
    );
  });

  test("runInSession() timeout kills every process the command started and spares earlier jobs", async (rt) => {
    await rt.createSession({ session: "s" });
    const [earlier, background, foreground, nohup, detached, orphan] = [
      uniqueSleep(),
      uniqueSleep(),
      uniqueSleep(),
      uniqueSleep(),
      uniqueSleep(),
      uniqueSleep(),
    ];
    await rt.runInSession({ session: "s", command: `${earlier} &` });
    try {
      await rejects(
        rt.runInSession({
          session: "s",
          command: [
            `${background} &`,
            `nohup ${nohup} >/dev/null 2>&1 &`,
            `setsid ${detached} &`,
            // The subshell exits at once, so this one leaves the shell's tree.
            `(${orphan} &)`,
            foreground,
          ].join("\n"),
          // Long enough for a busy machine to have started all five before the interrupt.
          timeout: 3,
        }),
        CommandTimeoutError,
      );
      for (const sleep of [background, foreground, nohup, detached, orphan]) {
        // SIGKILL is delivered at once but a busy machine may take a moment to finish the exit.
        await waitUntil(async () => await processesWith(sleep) === 0, `${sleep} is killed`);
      }
      assert.equal(await processesWith(earlier), 1, "the earlier job runs on");
      assert.equal((await rt.runInSession({ session: "s", command: "echo ok" })).output, "ok");
    } finally {
      await rt.runInSession({ session: "s", command: "kill %1 2>/dev/null; true" });
    }
  });

  test("runInSession() runs on a terminal by default, as ROCK's sessions do", async (rt) => {
    await rt.createSession({ session: "s" });
    const run = async (command: string) =>
      (await rt.runInSession({ session: "s", command, timeout: 10 })).output;
    assert.match(await run("tty"), /^\/dev\/pts\/\d+$/);
    assert.equal(await run("stty size"), "24 80");
    assert.equal(
      await run("[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-terminals"),
      "all-terminals",
    );
    // 30 names of 6 letters fill 10 columns of 3 rows on an 80-column terminal.
    const listing = await run(
      'cd "$(mktemp -d)" && touch $(seq -f \'file%02g\' 30) && ls && rm -r "$PWD"',
    );
    assert.equal(listing.split("\n").length, 3, listing);
    assert.match(listing.split("\n")[0] ?? "", /^file01\s+file04\s+file07/);
    // Output comes as the programs write it: no \r added before \n.
    assert.equal(await run("printf 'a\\nb\\r\\nc'"), "a\nb\r\nc");
    // A command that reads the terminal waits, as for a person, until its timeout; the session
    // stays usable and the input it waited for never arrives later.
    await rejects(
      rt.runInSession({ session: "s", command: "read -r line; echo got=$line", timeout: 0.5 }),
      CommandTimeoutError,
    );
    assert.equal(await run("echo after"), "after");
  });

  test("runInSession() and execute() with onOutput hand over output as it is printed", async (rt) => {
    await rt.createSession({ session: "s" });
    const chunks: { at: number; text: string }[] = [];
    const result = await rt.runInSession(
      { session: "s", command: "echo first; sleep 0.6; echo '  second  '" },
      { onOutput: (stream, text) => chunks.push({ at: performance.now(), text: stream + text }) },
    );
    const ended = performance.now();
    // The chunks are the output as printed; the result is the plain call's (trimmed).
    assert.equal(chunks.map((c) => c.text.replace(/^output/, "")).join(""), "first\n  second  \n");
    assert.equal(result.output, "first\n  second");
    assert.equal(result.exit_code, 0);
    assert.ok(chunks[0]?.text.startsWith("outputfirst"));
    assert.ok(ended - (chunks[0]?.at ?? ended) > 300, "the first line came while the command ran");

    // A failure keeps its class; what was printed before it still arrived.
    const before: string[] = [];
    await rejects(
      rt.runInSession(
        { session: "s", command: "echo started; sleep 30", timeout: 0.5 },
        { onOutput: (_stream, text) => before.push(text) },
      ),
      CommandTimeoutError,
    );
    assert.equal(before.join(""), "started\n");

    // A command that does not parse never ran: the check's diagnostics are no live output.
    const none: string[] = [];
    await rejects(
      rt.runInSession(
        { session: "s", command: "if then fi" },
        { onOutput: (_stream, text) => none.push(text) },
      ),
      BashSyntaxError,
    );
    assert.deepEqual(none, []);

    const streams: string[] = [];
    const executed = await rt.execute(
      { command: "echo out; sleep 0.3; echo err >&2; exit 3", shell: true },
      { onOutput: (stream, text) => streams.push(`${stream}:${text}`) },
    );
    assert.deepEqual(executed, { stdout: "out\n", stderr: "err\n", exit_code: 3 });
    assert.deepEqual(streams, ["stdout:out\n", "stderr:err\n"]);
  });

  test("runInSession() on pipes (pty: false) gives stdin end-of-file and no terminal", async (rt) => {
    await rt.createSession({ session: "s", pty: false });
    const result = await rt.runInSession({
      session: "s",
      command: "cat; read -r line; echo read=$?; tty",
      timeout: 5,
      check: "silent",
    });
    assert.equal(result.output, "read=1\nnot a tty");
  });

  test("runInSession() runs 20 sessions in parallel with isolated environments", async (rt) => {
    const names = Array.from({ length: 20 }, (_, i) => `p${i}`);
    await Promise.all(
      names.map((session, i) => rt.createSession({ session, env: { MINE: String(i) } })),
    );
    const outputs = await Promise.all(
      names.map((session) =>
        rt.runInSession({ session, command: "sleep 0.2; export ONLY_HERE=$MINE; echo $MINE" })
      ),
    );
    assert.deepEqual(outputs.map((o) => o.output), names.map((_, i) => String(i)));
    const other = await rt.runInSession({ session: "p1", command: "echo $MINE:$ONLY_HERE" });
    assert.equal(other.output, "1:1");
    await Promise.all(names.map((session) => rt.closeSession({ session })));
  });

  test("runInSession() runs concurrent calls on one session one after another", async (rt) => {
    await rt.createSession({ session: "s" });
    const [first, second] = await Promise.all([
      rt.runInSession({ session: "s", command: "X=1; sleep 0.3; echo first $X" }),
      rt.runInSession({ session: "s", command: "echo second ${X:-unset}" }),
    ]);
    assert.equal(first.output, "first 1");
    assert.equal(second.output, "second 1");
  });

  test("runInSession() returns 10 MiB of output intact", async (rt) => {
    await rt.createSession({ session: "s" });
    const size = 10 * 1024 * 1024;
    const result = await rt.runInSession({
      session: "s",
      command: `head -c ${size} /dev/zero | tr '\\0' x`,
    });
    assert.equal(result.output.length, size);
    assert.ok(!result.output.includes("truncated"));
    assert.equal(result.output.replaceAll("x", "").length, 0);
  });

  test("runInSession() caps output at the configured size with a truncation notice", async (rt) => {
    await rt.createSession({ session: "s" });
    const result = await rt.runInSession({ session: "s", command: "seq 1 100000" });
    assert.match(result.output, /\[rock: output truncated: kept the first \d+ of 588895 bytes/);
    assert.ok(result.output.length < 4096 + 200);
    assert.equal(
      (await rt.runInSession({ session: "s", command: "echo still-ok" })).output,
      "still-ok",
    );
  }, { maxOutputBytes: 4096 });

  test("runInSession() handles unicode, heredocs and multi-line scripts", async (rt) => {
    await rt.createSession({ session: "s" });
    const text = "héllo 世界 🎉 ünïcödé";
    assert.equal((await rt.runInSession({ session: "s", command: `echo '${text}'` })).output, text);
    const heredoc = await rt.runInSession({
      session: "s",
      command: "NAME=world\ncat <<'EOF'\nliteral $NAME `x`\nEOF\ncat <<EOF\nexpanded $NAME\nEOF",
    });
    assert.equal(heredoc.output, "literal $NAME `x`\nexpanded world");
    const script = [
      "total=0",
      "for i in 1 2 3; do",
      "  total=$((total + i))",
      "done",
      "if [ $total -eq 6 ]; then",
      '  echo "sum=$total"',
      "else",
      "  echo wrong",
      "fi",
    ].join("\n");
    assert.equal((await rt.runInSession({ session: "s", command: script })).output, "sum=6");
  });

  test("runInSession() reports a syntax error before running anything", async (rt) => {
    await rt.createSession({ session: "s" });
    const marker = `/tmp/rock-syntax-${crypto.randomUUID()}`;
    const error = await rejects(
      rt.runInSession({ session: "s", command: `touch ${marker}\nif then` }),
      BashSyntaxError,
    );
    assert.match(error.message, /syntax error/);
    assert.equal(
      await Deno.stat(marker).then(() => true, () => false),
      false,
      "nothing of it may run",
    );
    // A stray closing brace must not end the check early and let the rest run.
    await rejects(
      rt.runInSession({ session: "s", command: `echo\n}\ntouch ${marker}` }),
      BashSyntaxError,
    );
    assert.equal(
      await Deno.stat(marker).then(() => true, () => false),
      false,
      "nothing after a stray brace may run",
    );
    assert.equal((await rt.runInSession({ session: "s", command: "echo ok" })).output, "ok");
  });

  test("runInSession() returns exit 0 and no output for blank and comment-only commands, keeping state", async (rt) => {
    await rt.createSession({ session: "s" });
    await rt.runInSession({ session: "s", command: "cd /tmp && KEPT=yes && greet() { echo hi; }" });
    for (const command of ["", "\n", "  \t ", "# thinking...", "\n  # one\n# two\n\n"]) {
      await rt.runInSession({ session: "s", command: "false", check: "silent" });
      const result = await rt.runInSession({ session: "s", command, check: "silent" });
      assert.deepEqual(
        { output: result.output, exit_code: result.exit_code },
        { output: "", exit_code: 0 },
        `command ${JSON.stringify(command)}`,
      );
    }
    const ends = await rt.runInSession({
      session: "s",
      command: "echo a # a trailing comment without newline",
    });
    assert.equal(ends.output, "a");
    const heredoc = await rt.runInSession({ session: "s", command: "cat <<'EOF'\nlast\nEOF" });
    assert.equal(heredoc.output, "last");
    // bash runs a script whose here-document has no end line, with a warning.
    const open = await rt.runInSession({ session: "s", command: "cat <<'EOF'\nno end line" });
    assert.equal(open.exit_code, 0);
    assert.match(open.output, /no end line/);
    const state = await rt.runInSession({ session: "s", command: "echo $PWD $KEPT; greet" });
    assert.equal(state.output, "/tmp yes\nhi");
  });

  test("runInSession() reports bash's syntax error with the command's own line numbers", async (rt) => {
    await rt.createSession({ session: "s" });
    const wrapper = /eval|__rock|check|`\}'/;
    const third = await rejects(
      rt.runInSession({ session: "s", command: "echo a\necho b\nfi\necho c" }),
      BashSyntaxError,
    );
    assert.match(third.message, /bash: line 3: syntax error near unexpected token [`']fi'/);
    assert.doesNotMatch(third.message, wrapper);
    for (const command of ["x=1; (", "f() {", "if true; then\n  echo"]) {
      const open = await rejects(rt.runInSession({ session: "s", command }), BashSyntaxError);
      assert.match(open.message, /bash: line \d+: syntax error: unexpected end of file/);
      assert.doesNotMatch(open.message, wrapper);
      assert.match(String(open.extraInfo.bash_stderr), /unexpected end of file/);
    }
  });

  test("runInSession() output cannot forge the end marker", async (rt) => {
    await rt.createSession({ session: "s" });
    const result = await rt.runInSession({
      session: "s",
      command: "printf '\\n__rock_00000000000000000000000000000000_0\\n'; echo real; (exit 4)",
      check: "silent",
    });
    assert.equal(result.exit_code, 4);
    assert.match(result.output, /real$/);
  });

  test("runInSession() strips ANSI escapes from output", async (rt) => {
    await rt.createSession({ session: "s" });
    const result = await rt.runInSession({
      session: "s",
      command: "printf '\\033[1;31mred\\033[0m plain\\n'",
    });
    assert.equal(result.output, "red plain");
  });

  test("runInSession() reports the exit code when the command exits the shell", async (rt) => {
    await rt.createSession({ session: "s" });
    const result = await rt.runInSession({
      session: "s",
      command: "echo bye; exit 4",
      check: "silent",
    });
    assert.equal(result.exit_code, 4);
    assert.equal(result.output, "bye");
    await rejects(
      rt.runInSession({ session: "s", command: "echo again" }),
      SessionNotFoundError,
      (e) => {
        assert.match(e.message, /exited with code 4/);
      },
    );
    await rt.createSession({ session: "s" });
    assert.equal((await rt.runInSession({ session: "s", command: "echo new" })).output, "new");
  });

  test("runInSession() interrupts the command when the caller aborts", async (rt) => {
    await rt.createSession({ session: "s" });
    const sleep = uniqueSleep();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await rejects(
      rt.runInSession({ session: "s", command: sleep }, { signal: controller.signal }),
      CancelledError,
    );
    // The server side may still be interrupting when the client returns; the next call waits for it.
    assert.equal(
      (await rt.runInSession({ session: "s", command: "echo usable", timeout: 5 })).output,
      "usable",
    );
    assert.equal(await processesWith(sleep), 0);
  });

  test("createSession() applies env_enable, env and startup_source", async (rt) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/rc`, "export FROM_RC=sourced\necho rc-loaded\n");
      const created = await rt.createSession({
        session: "a",
        env: { ONLY_A: "1" },
        startup_source: [`${dir}/rc`],
      });
      assert.equal(created.output, "rc-loaded");
      await rt.createSession({ session: "b", env_enable: true });
      const a = await rt.runInSession({
        session: "a",
        command: "echo ${FROM_RC}:${ONLY_A}:${ROCK_CONTRACT_PARENT:-none}",
      });
      assert.equal(a.output, "sourced:1:none");
      const b = await rt.runInSession({
        session: "b",
        command: "echo ${ONLY_A:-unset}:$ROCK_CONTRACT_PARENT",
      });
      assert.equal(b.output, "unset:from-parent");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("createSession() rejects a duplicate name; closeSession() ends the session", async (rt) => {
    await rt.createSession({ session: "dup" });
    await rejects(rt.createSession({ session: "dup" }), SessionExistsError);
    await rt.closeSession({ session: "dup" });
    await rejects(rt.runInSession({ session: "dup", command: "true" }), SessionNotFoundError);
    await rejects(rt.closeSession({ session: "dup" }), SessionNotFoundError);
    await rejects(
      rt.runInSession({ session: "never-made", command: "true" }),
      SessionNotFoundError,
      (e) => {
        assert.match(e.message, /"never-made"/);
      },
    );
  });

  test("createSession() with remote_user runs the shell as that user", async (rt) => {
    const user = "rocktest";
    const exists = await new Deno.Command("id", { args: [user], stdout: "null", stderr: "null" })
      .output();
    if (!exists.success) {
      const made = await new Deno.Command("useradd", {
        args: ["-m", "-s", "/bin/bash", user],
        stderr: "piped",
      }).output();
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
    }
    await rt.createSession({ session: "u", remote_user: user });
    const result = await rt.runInSession({ session: "u", command: "whoami; id -u; tty" });
    const [name, uid, tty] = result.output.split("\n");
    assert.equal(name, user);
    assert.notEqual(uid, "0");
    // The terminal was given to the user, whose shell holds it as its controlling terminal.
    assert.match(tty ?? "", /^\/dev\/pts\/\d+$/);
    const owner = await rt.runInSession({ session: "u", command: "stat -c %U $(tty) </dev/tty" });
    assert.equal(owner.output, user);
    await rejects(
      rt.runInSession({ session: "u", command: "sleep 30.75", timeout: 0.3 }),
      CommandTimeoutError,
    );
    assert.equal((await rt.runInSession({ session: "u", command: "whoami" })).output, user);
  }, { ignore: !isRoot });

  test("execute() runs argv and shell strings with stdout and stderr apart", async (rt) => {
    const argv = await rt.execute({ command: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    assert.deepEqual(argv, { stdout: "out\n", stderr: "err\n", exit_code: 3 });
    const shell = await rt.execute({ command: "echo $((1 + 2)) | tr 3 x", shell: true });
    assert.deepEqual(shell, { stdout: "x\n", stderr: "", exit_code: 0 });
    const single = await rt.execute({ command: "pwd" });
    assert.equal(single.exit_code, 0);
  });

  test("execute() runs an empty shell string as ROCK does and rejects an empty argv", async (rt) => {
    const empty = await rt.execute({ command: "", shell: true });
    assert.deepEqual(empty, { stdout: "", stderr: "", exit_code: 0 });
    const blank = await rt.execute({ command: "  # nothing\n", shell: true });
    assert.deepEqual(blank, { stdout: "", stderr: "", exit_code: 0 });
    // `sh -c` without its argument, as subprocess.run([], shell=True) runs it.
    assert.equal((await rt.execute({ command: [], shell: true })).exit_code, 2);
    await rejects(rt.execute({ command: [] }), BadRequestError, (e) => {
      assert.equal(e.classPath, "builtins.IndexError");
    });
    await rejects(rt.execute({ command: "" }), FileOperationError);
  });

  test("execute() applies env and cwd", async (rt) => {
    const result = await rt.execute({
      command: "echo $ROCK_X; pwd",
      shell: true,
      env: { ROCK_X: "given" },
      cwd: "/tmp",
    });
    assert.equal(result.stdout, "given\n/tmp\n");
    await rejects(rt.execute({ command: "true", cwd: "/no/such/dir" }), FileOperationError, (e) => {
      assert.equal(e.kind, "FileNotFoundError");
    });
  });

  test("execute() kills the whole process tree on timeout", async (rt) => {
    const sleep = uniqueSleep();
    const started = performance.now();
    const error = await rejects(
      rt.execute({
        command: `echo started; ${sleep} & ${sleep}; wait`,
        shell: true,
        timeout: 0.5,
      }),
      CommandTimeoutError,
    );
    assert.ok(performance.now() - started < 20_000, "killed long before the sleeps end");
    assert.match(error.output, /started/);
    assert.equal(await processesWith(sleep), 0);
  });

  test("execute() reports a missing executable and check failures clearly", async (rt) => {
    await rejects(rt.execute({ command: ["no-such-binary-xyz"] }), FileOperationError, (e) => {
      assert.match(e.message, /no-such-binary-xyz/);
    });
    await rejects(rt.execute({ command: ["false"], check: true }), NonZeroExitCodeError, (e) => {
      assert.equal(e.exitCode, 1);
    });
  });

  test("writeFile() creates parents and readFile() reads text back with encodings", async (rt) => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/a/b/c.txt`;
      const text = "line one\nzweite Zeile: äöü\n第三行 🎉\n";
      assert.equal((await rt.writeFile({ path, content: text })).success, true);
      assert.equal((await rt.readFile({ path })).content, text);
      await Deno.writeFile(`${dir}/latin1.txt`, new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
      assert.equal(
        (await rt.readFile({ path: `${dir}/latin1.txt`, encoding: "latin1" })).content,
        "café",
      );
      await rejects(rt.readFile({ path: `${dir}/latin1.txt` }), FileOperationError, (e) => {
        assert.equal(e.kind, "UnicodeDecodeError");
      });
      assert.equal(
        (await rt.readFile({ path: `${dir}/latin1.txt`, errors: "replace" })).content,
        "caf\ufffd",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("readFile() and writeFile() report a missing file, a directory and permission denied", async (rt) => {
    const dir = await Deno.makeTempDir();
    try {
      await rejects(rt.readFile({ path: `${dir}/missing.txt` }), FileOperationError, (e) => {
        assert.equal(e.kind, "FileNotFoundError");
        assert.match(e.message, /missing\.txt/);
      });
      await rejects(
        rt.readFile({ path: dir }),
        FileOperationError,
        (e) => assert.equal(e.kind, "IsADirectoryError"),
      );
      await rejects(
        rt.writeFile({ path: dir, content: "x" }),
        FileOperationError,
        (e) => assert.equal(e.kind, "IsADirectoryError"),
      );
      await rejects(
        rt.download(dir),
        FileOperationError,
        (e) => assert.equal(e.kind, "IsADirectoryError"),
      );
      await rejects(
        rt.download(`${dir}/missing.bin`),
        FileOperationError,
        (e) => assert.equal(e.kind, "FileNotFoundError"),
      );
      let denied: string;
      if (isRoot) {
        // Root passes file modes, but a sysctl file checks its owner bits even for root, and
        // this one is write-only. (/proc/1/mem is no good: where pid 1 is ours, reading it
        // fails with EIO, which is an OSError.)
        denied = "/proc/sys/vm/compact_memory";
      } else {
        denied = `${dir}/locked.txt`;
        await Deno.writeTextFile(denied, "secret");
        await Deno.chmod(denied, 0o000);
      }
      await rejects(
        rt.readFile({ path: denied }),
        FileOperationError,
        (e) => assert.equal(e.kind, "PermissionError"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("upload() and download() move random binary data byte-exact", async (rt) => {
    const dir = await Deno.makeTempDir();
    try {
      const data = seededBytes(3 * 1024 * 1024 + 17, 42);
      const uploaded = await rt.upload(streamOf(data), { targetPath: `${dir}/deep/blob.bin` });
      assert.equal(uploaded.success, true);
      assert.equal(uploaded.file_name, "blob.bin");
      assert.equal(
        await sha256Hex(await Deno.readFile(`${dir}/deep/blob.bin`)),
        await sha256Hex(data),
      );
      const download = await rt.download(`${dir}/deep/blob.bin`);
      assert.equal(download.size, data.length);
      assert.equal(await sha256Hex(await readAll(download.body)), await sha256Hex(data));
      const leftovers = [];
      for await (const entry of Deno.readDir(`${dir}/deep`)) leftovers.push(entry.name);
      assert.deepEqual(leftovers, ["blob.bin"], "no temporary files are left");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("upload() with unzip extracts an archive into the target directory", async (rt) => {
    const src = await Deno.makeTempDir();
    const dest = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${src}/pkg/sub`, { recursive: true });
      await Deno.writeTextFile(`${src}/pkg/a.txt`, "alpha");
      const blob = seededBytes(100_000, 7);
      await Deno.writeFile(`${src}/pkg/sub/b.bin`, blob);
      const result = await rt.upload(zipDirectory(src), { targetPath: `${dest}/out`, unzip: true });
      assert.equal(result.success, true);
      assert.equal(await Deno.readTextFile(`${dest}/out/pkg/a.txt`), "alpha");
      assert.equal(
        await sha256Hex(await Deno.readFile(`${dest}/out/pkg/sub/b.bin`)),
        await sha256Hex(blob),
      );
    } finally {
      await Deno.remove(src, { recursive: true });
      await Deno.remove(dest, { recursive: true });
    }
  });

  test("upload() rejects data that is not a zip when unzip is set, leaving nothing behind", async (rt) => {
    const dest = await Deno.makeTempDir();
    try {
      await rejects(
        rt.upload(streamOf(new TextEncoder().encode("not a zip at all")), {
          targetPath: `${dest}/out`,
          unzip: true,
        }),
        RockError,
      );
      const names = [];
      for await (const entry of Deno.readDir(dest)) names.push(entry.name);
      assert.ok(
        names.every((n) => !n.startsWith(".rock-upload-")),
        `temporary file left: ${names}`,
      );
    } finally {
      await Deno.remove(dest, { recursive: true });
    }
  });

  test("isAlive() answers and getStatistics() reports figures", async (rt) => {
    assert.deepEqual(await rt.isAlive(), { is_alive: true, message: "" });
    const stats = await rt.getStatistics();
    for (const key of ["cpu", "mem", "disk", "net"] as const) {
      assert.equal(typeof stats[key], "number");
    }
    assert.ok(stats.mem > 0 && stats.mem < 100);
  });

  test("close() ends every session", async (rt) => {
    await rt.createSession({ session: "x" });
    await rt.createSession({ session: "y" });
    await rt.close();
    await rejects(rt.runInSession({ session: "x", command: "true" }), SessionNotFoundError);
  });
}
