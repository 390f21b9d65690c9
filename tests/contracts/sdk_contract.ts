/**
 * The SDK against a real admin (one suite, every backend): lifecycle, arun in both modes with
 * real exit codes, files both ways, groups with a forced failure, and typed errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BadRequestRockError,
  BashSyntaxError,
  CommandRockError,
  CommandTimeoutError,
  InternalServerRockError,
  Sandbox,
  SandboxGroup,
  SandboxNotFoundError,
  SandboxStartError,
  SessionExistsError,
} from "../../src/sdk/mod.ts";
import { startAdminServer, type TestBackend, testSandboxConfig } from "../helpers/admin_server.ts";
import { seededBytes, sha256Hex } from "../helpers/bytes.ts";

/** Registers one test (Deno.test, or dockerTest for docker). */
export type Register = (name: string, fn: () => Promise<void>) => void;

const configOf = testSandboxConfig;

/** Registers the SDK contract for `type`. */
export function defineSdkContract(type: TestBackend, register: Register): void {
  const label = `SDK (${type})`;

  register(
    `${label}: Sandbox starts, reports status, runs arun in both modes with real exit codes, and stops`,
    async () => {
      await using admin = await startAdminServer(type);
      const config = configOf(admin, "sdk", { userId: "sdk-user" });
      {
        await using sandbox = await new Sandbox(config).start();
        assert.equal(sandbox.sandboxId, config.sandboxId);
        const status = await sandbox.getStatus();
        assert.deepEqual([status.state, status.is_alive, status.user_id], [
          "running",
          true,
          "sdk-user",
        ]);
        assert.equal(await sandbox.isAlive(), true);

        const ok = await sandbox.arun("cd /tmp && echo hello");
        assert.deepEqual([ok.output, ok.exitCode], ["hello", 0]);
        const state = await sandbox.arun("pwd");
        assert.equal(state.output, "/tmp", "normal mode keeps its session");
        // The session runs on a terminal, as ROCK's do: 80x24, stdout is a tty (python3 says so
        // in the test image; the local sandbox is this machine, which may have no python3).
        const isatty = type === "docker"
          ? `python3 -c 'import sys; print(sys.stdout.isatty())'`
          : "[ -t 1 ] && echo True";
        const terminal = await sandbox.arun(`tty; stty size; ${isatty}`);
        assert.match(terminal.output, /^\/dev\/pts\/\d+\n24 80\nTrue$/);
        const seven = await sandbox.arun("echo out; (exit 7)");
        assert.deepEqual([seven.output, seven.exitCode], ["out", 7]);
        await assert.rejects(sandbox.arun("(exit 7)", { check: true }), (error: Error) => {
          assert.ok(error instanceof CommandRockError);
          assert.equal(error.exitCode, 7);
          assert.equal(error.sandboxId, config.sandboxId);
          return true;
        });

        const begin = performance.now();
        const bg = await sandbox.arun("sleep 0.3; echo background; exit 7", { mode: "nohup" });
        const took = performance.now() - begin;
        assert.deepEqual([bg.output, bg.exitCode], ["background", 7], JSON.stringify(bg));
        // A hang guard only (how soon is a benchmark figure): the job ends after 0.3 s.
        assert.ok(took < 10_000, `completion is noticed, took ${took} ms`);
        assert.ok(bg.pid && bg.pid > 0);
        const zero = await sandbox.arun("echo fine", { mode: "nohup" });
        assert.deepEqual([zero.output, zero.exitCode], ["fine", 0]);
        const slow = await sandbox.arun("sleep 30", { mode: "nohup", waitTimeout: 0.5 });
        assert.equal(slow.exitCode, null);
        assert.match(slow.failureReason, /did not complete within 0.5 s/);
        await sandbox.execute(["sh", "-c", `kill ${slow.pid}`]);
        const limited = await sandbox.arun("seq 1 1000", {
          mode: "nohup",
          responseLimitedBytes: 10,
        });
        assert.equal(limited.output, "1\n2\n3\n4\n5");

        const script = await sandbox.process.executeScript("echo from-script\nexit 4\n");
        assert.deepEqual([script.output, script.exitCode], ["from-script", 4]);
        const executed = await sandbox.execute(["sh", "-c", "echo o; echo e >&2; exit 2"]);
        assert.deepEqual(executed, { stdout: "o\n", stderr: "e\n", exit_code: 2 });
      }
      const after = await new Sandbox(config).getStatus();
      assert.equal(after.state, "stopped", "`await using` stopped it");
    },
  );

  register(
    `${label}: files go both ways byte-exact, including a directory of 100 files`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await new Sandbox(configOf(admin, "sdk-files")).start();
      const local = await Deno.makeTempDir({ prefix: "rock-sdk-files-" });
      try {
        await sandbox.writeFile("/tmp/sdk/a/b.txt", "héllo\nworld");
        assert.equal(await sandbox.readFile("/tmp/sdk/a/b.txt"), "héllo\nworld");
        const blob = seededBytes(2 * 1024 * 1024 + 3, 11);
        await sandbox.upload(blob, "/tmp/sdk/blob.bin");
        assert.equal(
          await sha256Hex(await sandbox.download("/tmp/sdk/blob.bin")),
          await sha256Hex(blob),
        );
        await Deno.writeFile(join(local, "up.bin"), blob);
        await sandbox.uploadByPath(join(local, "up.bin"), "/tmp/sdk/up.bin");
        const written = await sandbox.downloadToPath(
          "/tmp/sdk/up.bin",
          join(local, "down", "up.bin"),
        );
        assert.equal(written, blob.length);
        assert.equal(
          await sha256Hex(await Deno.readFile(join(local, "down", "up.bin"))),
          await sha256Hex(blob),
        );

        const tree = join(local, "tree");
        for (let i = 0; i < 100; i++) {
          await Deno.mkdir(join(tree, `d${i % 10}`), { recursive: true });
          await Deno.writeFile(join(tree, `d${i % 10}`, `f${i}.bin`), seededBytes(100 + i, i + 1));
        }
        await sandbox.uploadDir(tree, "/tmp/sdk/tree");
        const count = await sandbox.execute("find /tmp/sdk/tree -type f | wc -l", { shell: true });
        assert.equal(count.stdout.trim(), "100");
        assert.equal(
          await sha256Hex(await sandbox.download("/tmp/sdk/tree/d7/f57.bin")),
          await sha256Hex(seededBytes(157, 58)),
        );

        await sandbox.fs.chmod("/tmp/sdk/blob.bin", "600");
        assert.equal((await sandbox.arun("stat -c %a /tmp/sdk/blob.bin")).output, "600");
        await assert.rejects(sandbox.fs.chmod("/no/such/file", "600"), CommandRockError);
        await assert.rejects(sandbox.readFile("/no/such/file"), (error: Error) => {
          assert.ok(error instanceof BadRequestRockError, String(error));
          assert.match(error.message, /no such file/);
          return true;
        });
        await assert.rejects(sandbox.download("/no/such/file"), BadRequestRockError);
      } finally {
        await Deno.remove(local, { recursive: true });
      }
    },
  );

  register(`${label}: a group of 5 starts 4 and reports the one forced failure`, async () => {
    await using admin = await startAdminServer(type);
    await using group = await new SandboxGroup({
      size: 5,
      startConcurrency: 3,
      startRetryTimes: 1,
      configFor: (index) => configOf(admin, `group${index}`, index === 2 ? { memory: "65g" } : {}),
    }).start();
    assert.equal(group.sandboxes.length, 4);
    assert.deepEqual(group.failures.map((f) => [f.index, f.attempts]), [[2, 2]]);
    const [failure] = group.failures;
    assert.ok(failure?.error instanceof BadRequestRockError);
    assert.match(failure.error.message, /exceeds the maximum/);
    const statuses = await Promise.all(group.sandboxes.map((s) => s.getStatus()));
    assert.ok(statuses.every((s) => s.state === "running"));
    assert.deepEqual(await group.stop(), []);
    assert.ok(
      (await Promise.all(group.sandboxes.map((s) => s.getStatus()))).every((s) =>
        s.state === "stopped"
      ),
    );
  });

  register(
    `${label}: Sandbox.restart() brings a stopped sandbox back under its id; delete() leaves it visible only with includeAllStates`,
    async () => {
      await using admin = await startAdminServer(type);
      await using sandbox = await new Sandbox(configOf(admin, "sdk-restart")).start();
      await assert.rejects(sandbox.delete(), (error: Error) => {
        assert.ok(error instanceof BadRequestRockError, String(error));
        assert.match(error.message, /stop it first/);
        return true;
      });
      assert.equal((await sandbox.arun("echo before")).output, "before");
      await sandbox.stop();
      assert.equal((await sandbox.getStatus()).failure_kind, "user");
      const seen: string[] = [];
      assert.equal(await sandbox.restart({ onStatus: (s) => seen.push(s.state) }), sandbox);
      assert.equal(seen.at(-1), "running");
      assert.deepEqual([(await sandbox.arun("echo again")).output, await sandbox.isAlive()], [
        "again",
        true,
      ]);
      await assert.rejects(sandbox.restart(), BadRequestRockError, "a running one is refused");
      await sandbox.stop();
      await sandbox.delete();
      await assert.rejects(sandbox.getStatus(), SandboxNotFoundError);
      const deleted = await sandbox.getStatus(true);
      assert.deepEqual([deleted.state, deleted.failure_kind], ["deleted", "user"]);
    },
  );

  register(`${label}: errors are typed: unknown sandbox, unreachable admin`, async () => {
    await using admin = await startAdminServer(type);
    const ghost = new Sandbox({ baseUrl: admin.url, sandboxId: "no-such-sandbox" });
    await assert.rejects(ghost.getStatus(), (error: Error) => {
      assert.ok(error instanceof BadRequestRockError);
      assert.equal((error as BadRequestRockError).sandboxId, "no-such-sandbox");
      return true;
    });
    await assert.rejects(ghost.arun("true"), BadRequestRockError);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await assert.rejects(
      new Sandbox({ baseUrl: `http://127.0.0.1:${port}` }).start(),
      InternalServerRockError,
    );
  });

  register(
    `${label}: errors keep their class through the admin: timeout, session exists, syntax error, not found`,
    async () => {
      await using admin = await startAdminServer(type);
      const ghost = new Sandbox({ baseUrl: admin.url, sandboxId: "no-such-sandbox" });
      await assert.rejects(ghost.getStatus(), (error: Error) => {
        assert.ok(error instanceof SandboxNotFoundError, String(error));
        assert.ok(error instanceof BadRequestRockError, "a 4xxx stays a BadRequestRockError");
        assert.equal(error.extraInfo.sandbox_id, "no-such-sandbox");
        return true;
      });
      await using sandbox = await new Sandbox(configOf(admin, "sdk-errors")).start();
      const id = sandbox.sandboxId;

      await sandbox.createSession("twice");
      await assert.rejects(sandbox.createSession("twice"), (error: Error) => {
        assert.ok(error instanceof SessionExistsError, String(error));
        assert.equal(error.sandboxId, id);
        return true;
      });

      const run = (command: string, timeout?: number) =>
        sandbox.client.runInSession({ sandbox_id: id, session: "twice", command, timeout });
      await assert.rejects(run("sleep 5", 0.3), (error: Error) => {
        assert.ok(error instanceof CommandTimeoutError, String(error));
        assert.ok(error instanceof CommandRockError, "a 6xxx stays a CommandRockError");
        return true;
      });
      const timedOut = await sandbox.arun("sleep 5", { session: "twice", waitTimeout: 0.3 });
      assert.equal(timedOut.exitCode, null, "arun reports a timeout as no exit code");

      await assert.rejects(run("echo ok\nfi"), (error: Error) => {
        assert.ok(error instanceof BashSyntaxError, String(error));
        assert.deepEqual([error.line, error.unexpectedToken, error.unexpectedEnd], [
          2,
          "fi",
          false,
        ]);
        return true;
      });
      await assert.rejects(run("echo 'open"), (error: Error) => {
        assert.ok(error instanceof BashSyntaxError, String(error));
        assert.equal(error.unexpectedEnd, true);
        return true;
      });
    },
  );

  if (type === "docker") {
    register(`${label}: a start that fails names its phase`, async () => {
      await using admin = await startAdminServer(type);
      const sandbox = new Sandbox(configOf(admin, "sdk-fail", { image: "rock-test/missing:none" }));
      await assert.rejects(sandbox.start(), (error: Error) => {
        assert.ok(error instanceof SandboxStartError, String(error));
        assert.equal((error as SandboxStartError).phase, "image_pull");
        assert.match(error.message, /rock-test\/missing:none/);
        return true;
      });
    });
  }
}
