/**
 * Live output through the admin (on node:http, as `rock admin start` serves) on docker: a
 * command printing a line a second reaches the SDK and the CLI line by line while it runs. Each
 * line carries the moment it was printed (the container shares the host's clock), so the delay
 * from printing to arrival is measured, and printed for the record. The bound asserted is 10x
 * the 100 ms target, so a busy machine cannot fail the test, yet output held back until the end
 * (1 s and more for the first line) does.
 */
import assert from "node:assert/strict";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { startAdminServer, startSandbox } from "../helpers/admin_server.ts";
import { dockerTest } from "../helpers/docker.ts";
import { spawnRockSandbox } from "../helpers/process.ts";

/** Prints `line <i> <epoch ms>` three times, a second apart. */
const TICKS = 'for i in 1 2 3; do echo "line $i $(date +%s%3N)"; sleep 1; done';
const BOUND_MS = 1000;

/** Arrival minus print time of each `line <i> <ms>` in `chunks` (text with its arrival time). */
function delays(chunks: { at: number; text: string }[]): number[] {
  const result: number[] = [];
  let buffer = "";
  for (const { at, text } of chunks) {
    buffer += text;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const match = /^line (\d) (\d+)$/.exec(buffer.slice(0, newline).trim());
      buffer = buffer.slice(newline + 1);
      if (match) result.push(at - Number(match[2]));
    }
  }
  return result;
}

function check(label: string, measured: number[]): void {
  console.log(`${label}: print -> arrival ${measured.map((d) => `${d} ms`).join(", ")}`);
  assert.equal(measured.length, 3, `${label}: three lines`);
  for (const delay of measured) assert.ok(delay < BOUND_MS, `${label}: ${delay} ms`);
}

dockerTest(
  "live output (docker): the SDK and the CLI get each line while the command runs",
  async () => {
    await using admin = await startAdminServer("docker", { node: true });
    const sandbox = new Sandbox({
      baseUrl: admin.url,
      sandboxId: await startSandbox(admin, "live"),
    });
    try {
      // SDK, session (arun): chunks as printed, the result as without onOutput.
      const chunks: { at: number; text: string }[] = [];
      const result = await sandbox.arun(TICKS, {
        onOutput: (text) => chunks.push({ at: Date.now(), text }),
      });
      assert.equal(result.exitCode, 0);
      assert.match(result.output, /^line 1 \d+\nline 2 \d+\nline 3 \d+$/);
      check("SDK arun", delays(chunks));

      // SDK, the iterator form.
      const stream = sandbox.arunStream(TICKS);
      const iterated: { at: number; text: string }[] = [];
      for await (const text of stream) iterated.push({ at: Date.now(), text });
      assert.equal((await stream.result).exitCode, 0);
      check("SDK arunStream", delays(iterated));

      // SDK, execute: stdout and stderr apart.
      const parts: { stream: string; at: number; text: string }[] = [];
      const executed = await sandbox.execute(["bash", "-c", `${TICKS}; echo oops >&2`], {
        onOutput: (stream, text) => parts.push({ stream, at: Date.now(), text }),
      });
      assert.equal(executed.exit_code, 0);
      check("SDK execute", delays(parts.filter((p) => p.stream === "stdout")));
      assert.equal(
        parts.filter((p) => p.stream === "stderr").map((p) => p.text).join(""),
        "oops\n",
      );

      // The CLI, both paths (execute, and a session), read as it prints.
      for (const args of [["--"], ["--session", "live", "--"]]) {
        const child = spawnRockSandbox(admin.url, [
          "exec",
          sandbox.sandboxId,
          ...args,
          ...(args.length === 1 ? ["bash", "-c", TICKS] : [TICKS]),
        ]);
        const printed: { at: number; text: string }[] = [];
        const decoder = new TextDecoder();
        for await (const bytes of child.stdout) {
          printed.push({ at: Date.now(), text: decoder.decode(bytes, { stream: true }) });
        }
        const status = await child.status;
        const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
        assert.equal(status.code, 0, stderr);
        check(`CLI exec ${args.join(" ")}`, delays(printed));
      }
    } finally {
      await sandbox.stop();
    }
  },
);
