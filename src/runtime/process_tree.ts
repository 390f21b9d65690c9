/**
 * Process-tree helpers over Linux /proc: find the descendants of a process and when they
 * started, so a timed-out command can be killed without touching older background jobs.
 * Where /proc is missing (macOS), they find nothing and callers fall back to group signals.
 */

/** A process found under /proc. */
export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Process group. */
  pgid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  startTicks: number;
}

/** Clock ticks per second as /proc reports times (USER_HZ, 100 on every Linux we target). */
const TICKS_PER_SECOND = 100;

/** Reads every process from /proc; unreadable entries (exited meanwhile) are skipped. */
export async function listProcesses(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  try {
    for await (const dirent of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(dirent.name)) continue;
      try {
        const stat = await Deno.readTextFile(`/proc/${dirent.name}/stat`);
        // The command name (field 2) may hold spaces and parentheses: parse after the last ")".
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        entries.push({
          pid: Number(dirent.name),
          ppid: Number(fields[1]),
          pgid: Number(fields[2]),
          startTicks: Number(fields[19]),
        });
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    // No /proc on this system.
  }
  return entries;
}

/** The processes in `all` by their parent's pid. */
function childrenByParent(all: ProcessEntry[]): Map<number, ProcessEntry[]> {
  const children = new Map<number, ProcessEntry[]>();
  for (const entry of all) {
    const list = children.get(entry.ppid) ?? [];
    list.push(entry);
    children.set(entry.ppid, list);
  }
  return children;
}

/** Returns the descendants of `pid` (children, grandchildren, ...), not `pid` itself. */
export async function listDescendants(pid: number): Promise<ProcessEntry[]> {
  const all = await listProcesses();
  const children = childrenByParent(all);
  const found: ProcessEntry[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      found.push(child);
      stack.push(child.pid);
    }
  }
  return found;
}

/** Clock ticks since boot at this moment, comparable with ProcessEntry.startTicks. */
export async function ticksSinceBoot(): Promise<number> {
  try {
    const uptime = Number((await Deno.readTextFile("/proc/uptime")).split(" ")[0]);
    return Math.floor(uptime * TICKS_PER_SECOND);
  } catch {
    return 0;
  }
}

/** Sends `signal` to `pid`, ignoring processes that are already gone. */
export function signalProcess(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // Already exited.
  }
}

/**
 * The direct children of `pid` now (one small /proc read, cheap enough to take before every
 * command); undefined where the kernel does not list children.
 */
export function childrenOf(pid: number): number[] | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
    return text.split(" ").filter(Boolean).map(Number);
  } catch {
    return undefined;
  }
}

/**
 * Kills with SIGKILL what a command of shell `pid` started: the shell's descendants except
 * `spare` and everything below them, and members of the shell's process group (`pid` leads it)
 * that left the tree (reparented when their parent exited) and started within the last
 * `sinceMs` milliseconds. Returns how many were signalled.
 */
export async function killDescendantsExcept(
  pid: number,
  spare: number[],
  sinceMs: number,
): Promise<number> {
  const all = await listProcesses();
  const children = childrenByParent(all);
  // Everything under the shell, spared subtrees marked as such.
  const spared = new Set(spare);
  const inTree = new Set<number>([pid]);
  const doomed: number[] = [];
  const stack: [number, boolean][] = [[pid, false]];
  while (stack.length > 0) {
    const [parent, keep] = stack.pop()!;
    for (const child of children.get(parent) ?? []) {
      const keepChild = keep || spared.has(child.pid);
      inTree.add(child.pid);
      if (!keepChild) doomed.push(child.pid);
      stack.push([child.pid, keepChild]);
    }
  }
  const minTicks = (await ticksSinceBoot()) - Math.ceil((sinceMs / 1000) * TICKS_PER_SECOND) - 1;
  for (const entry of all) {
    if (entry.pgid === pid && !inTree.has(entry.pid) && entry.startTicks >= minTicks) {
      doomed.push(entry.pid);
    }
  }
  for (const target of doomed) signalProcess(target, "SIGKILL");
  return doomed.length;
}

/**
 * Kills with SIGKILL the descendants of `pid` that started at or after `sinceMs` milliseconds
 * ago (all of them when `sinceMs` is undefined). Returns how many were signalled.
 */
export async function killDescendants(pid: number, sinceMs?: number): Promise<number> {
  const descendants = await listDescendants(pid);
  const minTicks = sinceMs === undefined
    ? 0
    : (await ticksSinceBoot()) - Math.ceil((sinceMs / 1000) * TICKS_PER_SECOND) - 1;
  let count = 0;
  for (const entry of descendants) {
    if (entry.startTicks >= minTicks) {
      signalProcess(entry.pid, "SIGKILL");
      count++;
    }
  }
  return count;
}
