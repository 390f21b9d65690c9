/**
 * Is a process alive? From /proc on Linux (a zombie counts as dead, as in ROCK, and the start
 * time tells a recycled pid from the original); elsewhere a signal-0 probe.
 */
import process from "node:process";
import { pollUntil } from "./poll.ts";

/** What /proc says about a process. */
export interface ProcessInfo {
  /** One-letter state (R, S, D, Z, ...). */
  state: string;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  startTicks: number;
}

/** Reads /proc/PID/stat; undefined when the process (or /proc) does not exist. */
export async function readProcessInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: parse after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", startTicks: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

let hasProc: boolean | undefined;

/**
 * True when `pid` runs and is not a zombie; with `startTicks`, also that it is the process that
 * started then (not a later one given the same pid).
 */
export async function isProcessAlive(pid: number, startTicks?: number): Promise<boolean> {
  hasProc ??= await Deno.stat("/proc/self/stat").then(() => true, () => false);
  if (hasProc) {
    const info = await readProcessInfo(pid);
    if (!info || info.state === "Z" || info.state === "X") return false;
    return startTicks === undefined || info.startTicks === startTicks;
  }
  try {
    return process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * Waits until `pid` (started at `startTicks`, when given) is gone, asking every 20 ms.
 * @returns true when it ended within `timeoutMs`, false when it still runs
 */
export async function waitForExit(
  pid: number,
  startTicks: number | undefined,
  timeoutMs: number,
): Promise<boolean> {
  const ended = await pollUntil(
    async () => (await isProcessAlive(pid, startTicks)) ? undefined : true,
    { intervalMs: 20, timeoutMs },
  );
  return ended === true;
}
