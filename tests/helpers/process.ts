/** Helpers for tests (and the bench) that run `rock` as a child process. */
import { fileURLToPath } from "node:url";

/** Absolute path of main.ts. */
export const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** A server child process and the URL it printed. */
export interface ServedChild {
  url: string;
  child: Deno.ChildProcess;
  /** Everything the child writes to stderr, once it has exited. */
  stderr: Promise<string>;
}

/**
 * Spawns `deno <args>` (stdout and stderr piped) and waits for its `listening on <url>` line.
 * @throws {Error} with the output so far when the child exits before listening.
 */
export async function spawnServer(
  args: string[],
  options: {
    cwd?: string | undefined;
    env?: Record<string, string> | undefined;
    clearEnv?: boolean | undefined;
  } = {},
): Promise<ServedChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: options.env ?? {},
    clearEnv: options.clearEnv ?? false,
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on (http:\S+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited before listening: ${text}\n${await stderr}`);
    text += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  const [, url = ""] = /listening on (http:\S+)/.exec(text) ?? [];
  return { url, child, stderr };
}

/** Runs `rock rocklet` from source on a free loopback port. */
export function spawnRocklet(): Promise<ServedChild> {
  return spawnServer(["run", "--allow-all", MAIN, "rocklet", "--host", "127.0.0.1", "--port", "0"]);
}

/** What a finished `rock` command printed and its exit code. */
export interface RockRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `rock <args>` from source to completion. A hang guard kills it after 60 s (a server that
 * should have refused to start, say), which the test then sees as a failed run.
 */
export async function runRock(
  args: string[],
  options: {
    env?: Record<string, string> | undefined;
    cwd?: string | undefined;
    clearEnv?: boolean | undefined;
  } = {},
): Promise<RockRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: options.env ?? {},
    clearEnv: options.clearEnv ?? false,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** The command lines (arguments joined by spaces) of every process, read from /proc. */
export async function commandLines(): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const raw = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (raw) lines.push(raw.replace(/\0$/, "").replaceAll("\0", " "));
    } catch {
      // The process exited while we looked.
    }
  }
  return lines;
}

/**
 * Runs `rock admin start --port 0 --data-dir <dataDir>` from source, with `--config` when given,
 * any `extra` flags and more environment (`env`).
 */
export function spawnAdmin(
  dataDir: string,
  options: { config?: string; extra?: string[]; env?: Record<string, string> } = {},
): Promise<ServedChild> {
  return spawnServer([
    "run",
    "--allow-all",
    MAIN,
    "admin",
    "start",
    ...(options.config ? ["--config", options.config] : []),
    "--port",
    "0",
    "--data-dir",
    dataDir,
    ...(options.extra ?? []),
  ], { env: options.env });
}

/**
 * Starts `rock sandbox --base-url <url> <args>` from source (no user config file), its stdio as
 * `stdio` says, for a test that reads it while it runs; a hang guard kills it after 60 s.
 */
export function spawnRockSandbox(
  url: string,
  args: string[],
  stdio: { stdin?: "piped" | "null"; stdout?: "piped" | "null"; stderr?: "piped" | "null" } = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "sandbox", "--base-url", url, ...args],
    stdin: stdio.stdin ?? "null",
    stdout: stdio.stdout ?? "piped",
    stderr: stdio.stderr ?? "piped",
    env: { ROCK_CLI_DEFAULT_CONFIG_PATH: "/nonexistent/rock-config.ini" },
    signal: AbortSignal.timeout(60_000),
  }).spawn();
}
