import assert from "node:assert/strict";
import { CommandTimeoutError } from "../../src/common/errors.ts";
import { LocalRuntime } from "../../src/runtime/local_runtime.ts";
import { hostToolTest } from "../helpers/host_tools.ts";
import { startRockletServer } from "../helpers/rocklet_server.ts";
import { validating } from "../helpers/validating_runtime.ts";

/** A runtime with one session "s", closed at the end. */
async function withSession(
  fn: (client: ReturnType<typeof validating>) => Promise<void>,
): Promise<void> {
  const runtime = new LocalRuntime();
  try {
    const client = validating(runtime);
    await client.createSession({ session: "s" });
    await fn(client);
  } finally {
    await runtime.close();
  }
}

hostToolTest(
  ["python3"],
  "run_in_session drives a python3 REPL for 3 steps, quits it, then runs a normal command",
  () =>
    withSession(async (client) => {
      const start = await client.runInSession({
        session: "s",
        command: "python3 -i -u",
        is_interactive_command: true,
        expect: [">>> "],
        timeout: 10,
      });
      assert.equal(start.exit_code, 0);
      assert.equal(start.expect_string, ">>> ");
      const set = await client.runInSession({
        session: "s",
        command: "x = 20",
        is_interactive_command: true,
        expect: [">>> "],
        timeout: 10,
      });
      assert.equal(set.output, "");
      const sum = await client.runInSession({
        session: "s",
        command: "x + 22",
        is_interactive_command: true,
        expect: [">>> "],
        timeout: 10,
      });
      assert.equal(sum.output, "42");
      assert.equal(sum.exit_code, 0);
      assert.equal(sum.expect_string, ">>> ");
      const quit = await client.runInSession({
        session: "s",
        command: "exit()",
        is_interactive_quit: true,
        timeout: 10,
      });
      assert.equal(quit.exit_code, 0);
      const after = await client.runInSession({ session: "s", command: "echo ok" });
      assert.equal(after.output, "ok");
      assert.equal(after.exit_code, 0);
    }),
);

hostToolTest(
  ["python3"],
  "run_in_session interrupts an interactive program on timeout and the session stays usable",
  () =>
    withSession(async (client) => {
      await client.runInSession({
        session: "s",
        command: "python3 -i -u",
        is_interactive_command: true,
        expect: [">>> "],
        timeout: 10,
      });
      await assert.rejects(
        client.runInSession({
          session: "s",
          command: "import time; time.sleep(30)",
          is_interactive_command: true,
          expect: [">>> "],
          timeout: 0.5,
        }),
        CommandTimeoutError,
      );
      const after = await client.runInSession({ session: "s", command: "echo ok; cd /tmp; pwd" });
      assert.equal(after.output, "ok\n/tmp");
      assert.equal(after.exit_code, 0);
    }),
);

Deno.test("run_in_session in interactive mode ends at the prompt when the command exits", () =>
  withSession(async (client) => {
    const observation = await client.runInSession({
      session: "s",
      command: "echo hi; false",
      is_interactive_command: true,
      expect: ["never"],
      timeout: 10,
    });
    assert.equal(observation.output, "hi");
    assert.equal(observation.exit_code, 0);
    assert.equal(observation.expect_string, "SHELLPS1PREFIX");
    const after = await client.runInSession({ session: "s", command: "echo $((1 + 1))" });
    assert.equal(after.output, "2");
  }));

Deno.test("run_in_session with expect in normal mode stops at the string; the next command waits for the program", () =>
  withSession(async (client) => {
    const started = performance.now();
    const ready = await client.runInSession({
      session: "s",
      command: "echo ready; sleep 1.5; echo late",
      expect: ["ready"],
      timeout: 10,
    });
    assert.ok(performance.now() - started < 1000);
    assert.equal(ready.exit_code, null);
    assert.equal(ready.expect_string, "ready");
    assert.equal(ready.output, "");
    const next = await client.runInSession({ session: "s", command: "echo ok", timeout: 10 });
    assert.ok(performance.now() - started >= 1400);
    assert.equal(next.output, "ok");
    assert.equal(next.exit_code, 0);
  }));

Deno.test("run_in_session with expect in normal mode returns the exit code when the command ends first", () =>
  withSession(async (client) => {
    const observation = await client.runInSession({
      session: "s",
      command: "echo done; (exit 3)",
      expect: ["never"],
      check: "silent",
      timeout: 10,
    });
    assert.equal(observation.output, "done");
    assert.equal(observation.exit_code, 3);
  }));

Deno.test("run_in_session interrupts a program left in the foreground when the next command's timeout passes", () =>
  withSession(async (client) => {
    await client.runInSession({
      session: "s",
      command: "echo ready; sleep 30",
      expect: ["ready"],
      timeout: 10,
    });
    await assert.rejects(
      client.runInSession({ session: "s", command: "echo too-early", timeout: 0.5 }),
      CommandTimeoutError,
    );
    const after = await client.runInSession({ session: "s", command: "echo ok", timeout: 10 });
    assert.equal(after.output, "ok");
  }));

hostToolTest(
  ["python3"],
  "rocklet /run_in_session drives a python3 REPL over HTTP with ROCK's fields",
  async () => {
    await using server = startRockletServer();
    const run = async (body: Record<string, unknown>) => {
      const response = await fetch(`${server.url}/run_in_session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ session: "repl", timeout: 10, ...body }),
      });
      assert.equal(response.status, 200);
      return await response.json();
    };
    const created = await fetch(`${server.url}/create_session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ session: "repl" }),
    });
    assert.equal(created.status, 200);
    await created.body?.cancel();
    await run({ command: "python3 -i -u", is_interactive_command: true, expect: [">>> "] });
    const sum = await run({ command: "6 * 7", is_interactive_command: true, expect: [">>> "] });
    assert.deepEqual([sum.output, sum.exit_code, sum.expect_string], ["42", 0, ">>> "]);
    await run({ command: "exit()", is_interactive_quit: true });
    const after = await run({ command: "echo ok" });
    assert.deepEqual([after.output, after.exit_code], ["ok", 0]);
  },
);

hostToolTest(
  ["gdb", "python3"],
  "run_in_session drives gdb and a plain python3 (a REPL because stdin is the terminal) step by step",
  () =>
    withSession(async (client) => {
      const step = (command: string, expect = ["(gdb) "]) =>
        client.runInSession({
          session: "s",
          command,
          is_interactive_command: true,
          expect,
          timeout: 20,
        });
      const started = await step("gdb -q -nx");
      assert.equal(started.expect_string, "(gdb) ");
      assert.equal((await step("print 6 * 7")).output, "$1 = 42");
      assert.equal((await step("print $1 + 1")).output, "$2 = 43");
      const quit = await client.runInSession({
        session: "s",
        command: "quit",
        is_interactive_quit: true,
        timeout: 20,
      });
      assert.equal(quit.exit_code, 0);
      // No -i: python3 starts its REPL because its stdin is a terminal, as for a person.
      assert.equal((await step("python3", [">>> "])).expect_string, ">>> ");
      assert.equal((await step("print('x' * 3)", [">>> "])).output, "xxx");
      await client.runInSession({
        session: "s",
        command: "exit()",
        is_interactive_quit: true,
        timeout: 20,
      });
      const after = await client.runInSession({ session: "s", command: "echo back; tty" });
      assert.match(after.output, /^back\n\/dev\/pts\/\d+$/);
    }),
);
