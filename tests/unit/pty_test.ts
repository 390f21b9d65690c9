import assert from "node:assert/strict";
import { LocalRuntime } from "../../src/runtime/local_runtime.ts";
import { Pty } from "../../src/runtime/pty.ts";
import { validating } from "../helpers/validating_runtime.ts";

Deno.test("Pty: a child on the slave is heard, and close() ends the read at once", async () => {
  const pty = Pty.open({ cols: 80, rows: 24, mode: "raw" });
  const child = new Deno.Command("/bin/bash", {
    args: ["-c", 'exec 0<>"$0" 1>&0; stty size; exec sleep 30', pty.path],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  const reading = (async () => {
    for await (const chunk of pty.read()) text += decoder.decode(chunk);
  })();
  const deadline = Date.now() + 10_000;
  while (!text.includes("24 80") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(text, "24 80\n"); // raw: no \r added
  // The child still holds the slave: only close() can end the read.
  pty.close();
  await reading;
  child.kill("SIGKILL");
  await child.status;
});

Deno.test("100 sessions on terminals at once leave file operations and commands unblocked", async () => {
  // Each idle session waits for output; they share one poll(), so Deno's small pool of threads
  // for blocking calls (which file operations use too) stays free.
  const runtime = new LocalRuntime();
  try {
    const client = validating(runtime);
    const names = Array.from({ length: 100 }, (_, i) => `s${i}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const guard = new Promise<string>((resolve) => (timer = setTimeout(resolve, 60_000, "hung")));
    const work = async () => {
      for (const session of names) await client.createSession({ session });
      await Deno.readTextFile("/proc/self/stat");
      const outputs = await Promise.all(
        names.map((session) => client.runInSession({ session, command: `echo ${session}` })),
      );
      assert.deepEqual(outputs.map((o) => o.output), names);
      return "done";
    };
    assert.equal(await Promise.race([work(), guard]), "done");
    clearTimeout(timer);
  } finally {
    await runtime.close();
  }
});
