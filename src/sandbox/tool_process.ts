/**
 * What the shell-out wrappers (docker_cli.ts, kubectl_cli.ts) share: a kill that a timeout or an
 * AbortSignal pulls, and reading a long-lived child's stdout until it exits.
 */
import $, { KillController, type KillSignal } from "dax";

/** A kill switch for one call: pulled by `signal` or after `timeoutMs`. */
export interface CallKill {
  /** The signal to give dax (`.signal()`). */
  signal: KillSignal;
  /** True once the timeout pulled it. */
  readonly timedOut: boolean;
  /** Clears the timer and the abort listener. */
  done(): void;
}

/**
 * A KillController that sends SIGKILL (not SIGTERM: a CLI may run on after SIGTERM, and dax
 * passes only the first signal on) when `signal` aborts or `timeoutMs` passes.
 */
export function callKill(timeoutMs: number, signal?: AbortSignal): CallKill {
  const kill = new KillController();
  const stop = () => kill.kill("SIGKILL");
  const state = { timedOut: false };
  const timer = setTimeout(() => {
    state.timedOut = true;
    stop();
  }, timeoutMs);
  signal?.addEventListener("abort", stop, { once: true });
  return {
    signal: kill.signal,
    get timedOut() {
      return state.timedOut;
    },
    done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", stop);
    },
  };
}

/**
 * Hands `onText` what `child` prints on stdout until it exits or `signal` aborts it (SIGKILL).
 * @returns its exit code (128 when a signal ended it) and its stderr.
 */
export async function followChild(
  child: Deno.ChildProcess,
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stop = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  };
  signal?.addEventListener("abort", stop, { once: true });
  try {
    const stderr = new Response(child.stderr).text();
    const decoder = new TextDecoder();
    for await (const bytes of child.stdout) onText(decoder.decode(bytes, { stream: true }));
    const status = await child.status;
    return { code: status.signal ? 128 : status.code, stdout: "", stderr: await stderr };
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}

/** True when `binary` (a name looked up on PATH, or a path) names a file. */
export async function binaryExists(binary: string): Promise<boolean> {
  if (!binary.includes("/")) return await $.which(binary) !== undefined;
  return await Deno.stat(binary).then(() => true, () => false);
}

/** `": <evidence>"`, or nothing when there is no evidence. */
export function colon(evidence: string): string {
  return evidence ? `: ${evidence}` : "";
}

/** Waits `ms`, or less when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
