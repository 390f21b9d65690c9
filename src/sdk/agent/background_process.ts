/**
 * A long command (an agent) run in the background of a bash session: started with nohup, its pid
 * known at once (so a model service can watch it), waited for with `wait` (its real exit code,
 * the moment it ends), the sandbox checked meanwhile, and the whole process tree stopped on a
 * timeout. Sandbox.arun's nohup mode does the same in one call but never shows the pid early.
 */
import type { Sandbox } from "../sandbox.ts";
import { describeStopped } from "../../protocol/admin.ts";
import {
  BadRequestRockError,
  CommandRockError,
  RockSdkError,
  SandboxStoppedRockError,
} from "../errors.ts";
import { shellQuote } from "../shell_text.ts";

/** What RockAgent.run() returns. */
export interface AgentRunResult {
  /** What the agent printed, stdout and stderr in order. */
  output: string;
  /** The agent's real exit code; null when it did not finish within agent_run_timeout. */
  exitCode: number | null;
  /** Why it failed without an exit code (a timeout), else empty. */
  failureReason: string;
  /** The agent's process id in the sandbox. */
  pid: number;
  /** The file in the sandbox holding the full output. */
  outputFile: string;
}

/** Lists a process and its descendants (children first) through /proc, so a timeout stops all. */
const PROCESS_TREE = "__rock_tree() { local c; for c in $(cat /proc/$1/task/*/children " +
  '2>/dev/null); do __rock_tree "$c"; done; echo "$1"; }';

function hex(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

/** One background process in a session of a sandbox. */
export class BackgroundProcess {
  /** Its process id in the sandbox. */
  readonly pid: number;
  /** The file holding its output. */
  readonly outputFile: string;
  readonly #sandbox: Sandbox;
  readonly #session: string;

  private constructor(sandbox: Sandbox, session: string, pid: number, outputFile: string) {
    this.#sandbox = sandbox;
    this.#session = session;
    this.pid = pid;
    this.outputFile = outputFile;
  }

  /**
   * Starts `command` with `nohup bash -c` in `session` (which must exist), output to a file.
   * @throws {RockSdkError} when no process id comes back.
   */
  static async start(
    sandbox: Sandbox,
    options: { session: string; command: string },
  ): Promise<BackgroundProcess> {
    const outputFile = `/tmp/rock-agent-${hex()}.out`;
    const launched = await sandbox.client.runInSession({
      sandbox_id: sandbox.sandboxId,
      session: options.session,
      command: `nohup bash -c ${shellQuote(options.command)} > ${
        shellQuote(outputFile)
      } 2>&1 < /dev/null & echo "$!"`,
      check: "raise",
      timeout: 30,
    });
    const pid = Number(launched.output.trim().split("\n").pop());
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new RockSdkError(
        `Cannot start the agent in sandbox "${sandbox.sandboxId}": no process id in ` +
          `"${launched.output}"`,
        { sandboxId: sandbox.sandboxId },
      );
    }
    return new BackgroundProcess(sandbox, options.session, pid, outputFile);
  }

  /**
   * Waits up to `timeout` seconds for the process to end (stopping it after that) and returns
   * its output and exit code; every `checkInterval` seconds asks the admin whether the sandbox
   * still runs (a keep-alive too).
   * @throws {RockSdkError} when the sandbox stops meanwhile.
   */
  async wait(
    options: {
      timeout: number;
      checkInterval: number;
      /** Gets the output as the process prints it (see #follow). */
      onOutput?: ((text: string) => void) | undefined;
    },
  ): Promise<AgentRunResult> {
    const sandboxId = this.#sandbox.sandboxId;
    const watch = this.#watchSandbox(options.checkInterval);
    const following = options.onOutput && this.#follow(options.onOutput, options.timeout);
    try {
      const { exitCode, failureReason } = await this.#waitFor(options.timeout, watch.signal);
      await following?.end();
      const read = await this.#sandbox.client.runInSession({
        sandbox_id: sandboxId,
        session: this.#session,
        command: `cat ${shellQuote(this.outputFile)}`,
        check: "silent",
        timeout: 60,
      });
      return {
        output: read.output,
        exitCode,
        failureReason,
        pid: this.pid,
        outputFile: this.outputFile,
      };
    } catch (error) {
      // Calls also fail when the sandbox goes away under them: say so rather than how. A stop
      // in progress may still read "running" just after its rocklet is gone: ask a few times.
      const gone = watch.gone ||
        (error instanceof SandboxStoppedRockError
          ? error.message
          : error instanceof CommandRockError
          ? ""
          : await this.#sandboxGone([0, 250, 500, 1000]));
      if (!gone) throw error;
      throw new RockSdkError(`Agent process ${this.pid} lost while it ran: ${gone}`, {
        sandboxId,
        cause: error,
      });
    } finally {
      await following?.end();
      await watch.stop();
    }
  }

  /**
   * Streams the output file to `onOutput` while the process runs: `tail -f --pid` through a
   * live-output execute, which ends on its own within a fraction of a second of the process.
   * Best effort: where the image's tail cannot follow (busybox has no --pid), nothing is
   * streamed. `end()` waits briefly for the tail, then cancels it.
   */
  #follow(onOutput: (text: string) => void, timeout: number): { end(): Promise<void> } {
    const cancel = new AbortController();
    const tail = this.#sandbox.client.execute(
      {
        sandbox_id: this.#sandbox.sandboxId,
        command: ["tail", "-c", "+1", "-s", "0.2", "-f", `--pid=${this.pid}`, this.outputFile],
        timeout: timeout + 60,
      },
      cancel.signal,
      (stream, text) => {
        if (stream !== "stderr") onOutput(text);
      },
    ).then(() => {}, () => {});
    return {
      end: async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([tail, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
        clearTimeout(timer);
        cancel.abort();
        await tail;
      },
    };
  }

  /** SIGTERM to the process and its descendants, SIGKILL after 5 s, then reaped. */
  async stop(): Promise<void> {
    const pid = this.pid;
    const alive = `[ -d /proc/${pid} ] && ! grep -q '^State:[[:space:]]*Z' /proc/${pid}/status`;
    await this.#sandbox.client.runInSession({
      sandbox_id: this.#sandbox.sandboxId,
      session: this.#session,
      command: `${PROCESS_TREE}; pids=$(__rock_tree ${pid}); kill -TERM $pids 2>/dev/null; ` +
        `for i in $(seq 50); do { ${alive} 2>/dev/null; } || break; sleep 0.1; done; ` +
        `kill -KILL $pids 2>/dev/null; wait ${pid} 2>/dev/null; true`,
      check: "silent",
      timeout: 30,
    }).catch(() => {});
  }

  /** `wait` for the process, at most `timeout` seconds; after that it is stopped. */
  async #waitFor(
    timeout: number,
    signal: AbortSignal,
  ): Promise<{ exitCode: number | null; failureReason: string }> {
    try {
      // The process is a child of the session's shell: `wait` returns its exit status the
      // moment it ends. On timeout the rocklet interrupts `wait`; the process ignores SIGINT (a
      // background job) and is stopped below.
      const waited = await this.#sandbox.client.runInSession({
        sandbox_id: this.#sandbox.sandboxId,
        session: this.#session,
        command: `wait ${this.pid}; echo "__rock_exit__$?"`,
        check: "silent",
        timeout,
      }, signal);
      const code = /__rock_exit__(\d+)/.exec(waited.output)?.[1];
      return code === undefined
        ? {
          exitCode: null,
          failureReason: `Cannot read the exit status of agent process ${this.pid}: ` +
            waited.output,
        }
        : { exitCode: Number(code), failureReason: "" };
    } catch (error) {
      if (!(error instanceof CommandRockError) || signal.aborted) throw error;
      await this.stop();
      return {
        exitCode: null,
        failureReason: `Agent process ${this.pid} did not finish within agent_run_timeout ` +
          `(${timeout} s); it was stopped`,
      };
    }
  }

  /**
   * Why and since when the sandbox no longer runs, or "" while it does (or the admin cannot tell
   * now); asks again after each of `delaysMs` while the answer is "".
   */
  async #sandboxGone(delaysMs: number[] = [0]): Promise<string> {
    for (const delay of delaysMs) {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        const status = await this.#sandbox.getStatus();
        if (status.state !== "running" && status.state !== "pending") {
          return describeStopped(status.sandbox_id, status);
        }
      } catch (error) {
        // Unknown sandbox: gone. Anything else (the admin restarting): not known to be gone.
        if (error instanceof BadRequestRockError) return error.message;
      }
    }
    return "";
  }

  /**
   * Every `interval` seconds asks the admin for the sandbox's state; when it no longer runs,
   * aborts `signal` and records why in `gone`.
   */
  #watchSandbox(
    interval: number,
  ): { signal: AbortSignal; readonly gone: string; stop(): Promise<void> } {
    const controller = new AbortController();
    let stopped = false;
    let gone = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake: (() => void) | undefined;
    const loop = (async () => {
      while (!stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, interval * 1000);
        });
        if (stopped) return;
        gone = await this.#sandboxGone();
        if (gone) return controller.abort();
      }
    })();
    return {
      signal: controller.signal,
      get gone() {
        return gone;
      },
      async stop() {
        stopped = true;
        clearTimeout(timer);
        wake?.();
        await loop;
      },
    };
  }
}
