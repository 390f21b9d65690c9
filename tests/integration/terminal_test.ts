/**
 * Processes attached over a WebSocket through the admin (on node:http, as `rock admin start`
 * serves; local backend): the SDK's `sandbox.pty()` on a terminal and on pipes, `rock sandbox
 * exec -i`, and `rock sandbox shell` as a real terminal driven by tmux (a python3 REPL, Ctrl-C
 * interrupting `sleep 100`, `less` drawn full-screen, the exit code on exit).
 */
import assert from "node:assert/strict";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { RockSdkError } from "../../src/sdk/errors.ts";
import type { Terminal } from "../../src/sdk/terminal.ts";
import { startAdminServer, startSandbox } from "../helpers/admin_server.ts";
import { hostToolTest } from "../helpers/host_tools.ts";
import { dockerTest } from "../helpers/docker.ts";
import { commandLines, MAIN, spawnRockSandbox } from "../helpers/process.ts";
import { waitUntil } from "../helpers/wait.ts";

/** A sleep no other test runs, to find in the process list (the sandbox is this machine). */
const SLEEP = `sleep 100.${Math.floor(Math.random() * 1e6)}`;

/** Waits until the sandbox's `SLEEP` runs (or, with false, until it is gone). */
function sleeping(running: boolean): Promise<void> {
  return waitUntil(
    async () => (await commandLines()).some((line) => line === SLEEP) === running,
    running ? `${SLEEP} to run` : `${SLEEP} to end`,
  );
}

/** A local sandbox on an admin that relays upgrades; both go at the end. */
async function withSandbox(fn: (sandbox: Sandbox, url: string) => Promise<void>): Promise<void> {
  await using admin = await startAdminServer("local", { node: true });
  const sandbox = new Sandbox({
    baseUrl: admin.url,
    sandboxId: `rock-term-${crypto.randomUUID().slice(0, 8)}`,
  });
  await sandbox.start();
  try {
    await fn(sandbox, admin.url);
  } finally {
    await sandbox.stop();
  }
}

/** A terminal whose output is collected as text; `until` waits for a pattern in what is new. */
async function openTerminal(sandbox: Sandbox, options: { cols?: number; rows?: number } = {}) {
  let text = "";
  let seen = 0;
  const decoder = new TextDecoder();
  const terminal: Terminal = await sandbox.pty({
    ...options,
    command: "PS1='$ ' exec /bin/bash --norc -i",
    onData: (data) => (text += decoder.decode(data, { stream: true })),
  });
  const until = async (pattern: RegExp, what: string) => {
    let match: RegExpExecArray | null = null;
    await waitUntil(
      () => (match = pattern.exec(text.slice(seen))) !== null,
      `${what}; the terminal showed ${JSON.stringify(text.slice(seen))}`,
    );
    seen += match!.index + match![0].length;
    return match!;
  };
  return { terminal, until, text: () => text };
}

hostToolTest(
  ["python3"],
  "sandbox.pty(): a terminal with a REPL, Ctrl-C, resize and the exit code",
  async () => {
    await withSandbox(async (sandbox) => {
      const { terminal, until } = await openTerminal(sandbox, { cols: 100, rows: 30 });
      await until(/\$ $/, "the prompt");
      terminal.write("tty; stty size\r");
      await until(/\/dev\/pts\/\d+\r\n30 100\r\n/, "tty and size");
      terminal.resize(120, 40);
      terminal.write("stty size\r");
      await until(/40 120\r\n/, "the new size");
      terminal.write("python3 -q\r");
      await until(/>>> $/, "python's prompt");
      terminal.write("6 * 7\r");
      await until(/42\r\n>>> $/, "python's answer");
      terminal.write("\x04"); // Ctrl-D leaves python
      await until(/\$ $/, "the shell again");
      terminal.write(`${SLEEP}\r`);
      await sleeping(true);
      terminal.write("\x03"); // Ctrl-C, turned into SIGINT by the sandbox's terminal
      await until(/\^C[^]*\$ $/, "the prompt after Ctrl-C");
      await sleeping(false);
      terminal.signal("SIGINT"); // also as a control message: bash at its prompt survives it
      terminal.write("exit 3\r");
      assert.equal(await terminal.exited, 3);
    });
  },
);

dockerTest("sandbox.pty() on docker: a terminal, a REPL, Ctrl-C and the exit code", async () => {
  await using admin = await startAdminServer("docker", { node: true });
  const sandbox = new Sandbox({ baseUrl: admin.url, sandboxId: await startSandbox(admin, "pty") });
  try {
    const { terminal, until } = await openTerminal(sandbox);
    await until(/\$ $/, "the prompt");
    terminal.write("tty; python3 -q\r");
    await until(/\/dev\/pts\/\d+\r\n[^]*>>> $/, "tty, then python's prompt");
    terminal.write("6 * 7\r");
    await until(/42\r\n>>> $/, "python's answer");
    terminal.write("\x04");
    await until(/\$ $/, "the shell again");
    terminal.write(`${SLEEP}\r`);
    await sleeping(true);
    terminal.write("\x03");
    await until(/\^C[^]*\$ $/, "the prompt after Ctrl-C");
    await sleeping(false);
    terminal.write("exit 5\r");
    assert.equal(await terminal.exited, 5);
  } finally {
    await sandbox.stop();
  }
});

Deno.test("sandbox.pty({ tty: false }): stdin passed through, stdout and stderr apart", async () => {
  await withSandbox(async (sandbox) => {
    const out: string[] = [];
    const err: string[] = [];
    const decoder = new TextDecoder();
    const terminal = await sandbox.pty({
      tty: false,
      command: "wc -c; echo done >&2; exit 4",
      onData: (data, stream) => (stream === "stderr" ? err : out).push(decoder.decode(data)),
    });
    const block = new Uint8Array(64 * 1024).fill(0x61);
    for (let i = 0; i < 16; i++) terminal.write(block);
    terminal.eof();
    assert.equal(await terminal.exited, 4);
    assert.equal(out.join("").trim(), String(16 * 64 * 1024));
    assert.equal(err.join(""), "done\n");

    // A bad query is refused before anything starts.
    await assert.rejects(sandbox.pty({ cols: 0 }), RockSdkError);
  });
});

Deno.test("rock sandbox exec -i passes stdin through and returns the exit code", async () => {
  await withSandbox(async (sandbox, url) => {
    const child = spawnRockSandbox(
      url,
      ["exec", "-i", sandbox.sandboxId, "--", "sh", "-c", "tr a-z A-Z; exit 6"],
      { stdin: "piped" },
    );
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("hello\nworld\n"));
    await writer.close();
    const output = await child.output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assert.equal(output.code, 6, decode(output.stderr));
    assert.equal(decode(output.stdout), "HELLO\nWORLD\n");
  });
});

/** Runs tmux with `args` on the test's own server socket. */
async function tmux(socket: string, ...args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args: ["-S", socket, ...args], stderr: "piped" })
    .output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

hostToolTest(
  ["tmux", "python3", "less"],
  "rock sandbox shell under tmux is a real terminal: REPL, Ctrl-C, less drawn, exit code",
  async () => {
    await withSandbox(async (sandbox, url) => {
      const dir = await Deno.makeTempDir({ prefix: "rock-tmux-" });
      const socket = `${dir}/tmux.sock`;
      const exitFile = `${dir}/exit`;
      try {
        const shell = [Deno.execPath(), "run", "--allow-all", MAIN, "sandbox", "--base-url", url]
          .concat(["shell", sandbox.sandboxId]).map((a) => `'${a}'`).join(" ");
        await tmux(
          socket,
          "new-session",
          "-d",
          "-x",
          "100",
          "-y",
          "30",
          `env ROCK_CLI_DEFAULT_CONFIG_PATH=/nonexistent ${shell}; echo $? > '${exitFile}'; sleep 60`,
        );
        const screen = () => tmux(socket, "capture-pane", "-p");
        const keys = (...k: string[]) => tmux(socket, "send-keys", ...k);
        let shown = "";
        const see = (pattern: RegExp, what: string, view = (text: string) => text) =>
          waitUntil(async () => pattern.test(view(shown = await screen())), what, 60_000).catch(
            (error) => {
              throw new Error(`${(error as Error).message}; the window showed:\n${shown}`);
            },
          );
        // A login bash on the sandbox's terminal (tmux shows lines without trailing blanks).
        // The last line with something on it: where a prompt waits.
        const last = (text: string) => text.trimEnd().split("\n").pop()?.trimEnd() ?? "";
        const prompt = (what: string) => see(/^rock-term>$/, what, (text) => last(text));
        await keys("PS1='rock-term> '", "Enter");
        await prompt("the shell's prompt");
        await keys("clear; stty size", "Enter");
        await see(/^30 100\nrock-term>\s*$/m, "the window's size in the sandbox");
        await keys("clear; python3 -q", "Enter");
        await see(/^>>>$/, "python's prompt", last);
        await keys("print(6 * 7)", "Enter");
        await see(/^42\n>>>\s*$/m, "python's answer");
        await keys("C-d");
        await prompt("the shell after python");
        await keys("clear", "Enter");
        await keys(SLEEP, "Enter");
        await sleeping(true);
        await keys("C-c");
        await see(/\^C\s*\nrock-term>\s*$/, "the prompt right after Ctrl-C");
        await sleeping(false);
        await keys("seq 1 500 | less", "Enter");
        // less fills the window (29 lines and its prompt) and waits on the last line.
        await see(/^1\n2\n3\n(?:\d+\n){25}29\n:$/, "less drawn full-screen", (t) => t.trimEnd());
        await keys("G");
        await see(/\n500\n\(END\)$/, "less at the end", (t) => t.trimEnd());
        await keys("q");
        await prompt("the shell after less");
        await keys("exit 7", "Enter");
        await waitUntil(
          async () => (await Deno.readTextFile(exitFile).catch(() => "")).trim() !== "",
          "rock to exit",
          60_000,
        );
        assert.equal((await Deno.readTextFile(exitFile)).trim(), "7");
      } finally {
        await new Deno.Command("tmux", { args: ["-S", socket, "kill-server"], stderr: "null" })
          .output();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
