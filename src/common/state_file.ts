/**
 * A state file that one serving process owns at a time (the admin's `admin.pid`, the model
 * service's `model-service.json`). The owner holds an exclusive lock on it for as long as it
 * lives, so two starts can never both serve, and the kernel drops the lock when the owner dies
 * however it dies. The file names the owner (pid and process start time, so a recycled pid is
 * not mistaken for it) and whatever the role adds (its address); only the owner rewrites or
 * removes it.
 */
import { dirname } from "node:path";
import { pollUntil } from "./poll.ts";
import { isProcessAlive, readProcessInfo } from "./process_state.ts";

/** What every state file holds; roles add their own fields. */
export interface OwnedState {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux), to detect pid reuse. */
  start_ticks?: number;
  started_at: string;
}

/** Reads a state file; undefined when missing, empty or unreadable. */
export async function readStateFile<T extends OwnedState>(path: string): Promise<T | undefined> {
  try {
    const state = JSON.parse(await Deno.readTextFile(path));
    return Number.isInteger(state?.pid) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** The state in `path` when its owner still runs, else undefined (a stale file is left alone). */
export async function liveStateFile<T extends OwnedState>(path: string): Promise<T | undefined> {
  const state = await readStateFile<T>(path);
  if (!state) return undefined;
  return (await isProcessAlive(state.pid, state.start_ticks)) ? state : undefined;
}

/** This process's claim on a state file; it lasts until release() or the process ends. */
export interface StateFileClaim<T extends OwnedState> {
  /** What the file holds now. */
  readonly state: T;
  /** Rewrites the file with `patch` applied. */
  update(patch: Partial<T>): Promise<void>;
  /** Removes the file and gives up the claim. */
  release(): Promise<void>;
}

const encoder = new TextEncoder();

/**
 * Claims `path` for this process: an exclusive lock on the file, then this process's state in it.
 * A file whose owner died is taken over.
 * @param taken builds the error thrown when another process owns the file; it gets the owner's
 *   state, or undefined when the owner has not written it yet.
 * @throws whatever `taken` returns, when another process owns the file.
 */
export async function claimStateFile<T extends OwnedState>(
  path: string,
  init: Omit<T, keyof OwnedState>,
  taken: (owner: T | undefined) => Error,
): Promise<StateFileClaim<T>> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await lockFile(path, taken);
  let state = {
    pid: Deno.pid,
    start_ticks: (await readProcessInfo(Deno.pid))?.startTicks,
    started_at: new Date().toISOString(),
    ...init,
  } as T;
  const write = async () => {
    // In place, not by rename: the lock belongs to this inode.
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    const bytes = encoder.encode(JSON.stringify(state));
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
  };
  try {
    await write();
  } catch (error) {
    file.close();
    throw error;
  }
  let released = false;
  return {
    get state() {
      return state;
    },
    async update(patch) {
      state = { ...state, ...patch };
      await write();
    },
    async release() {
      if (released) return;
      released = true;
      await Deno.remove(path).catch(() => {});
      file.close();
    },
  };
}

/** Opens `path` and takes its exclusive lock, retrying when the file was replaced meanwhile. */
async function lockFile<T extends OwnedState>(
  path: string,
  taken: (owner: T | undefined) => Error,
): Promise<Deno.FsFile> {
  for (;;) {
    const file = await Deno.open(path, { read: true, write: true, create: true });
    let locked = false;
    try {
      locked = await file.tryLock(true);
      // The owner that released it removed the path: a lock on that old inode is no claim.
      if (locked && (await file.stat()).ino === (await Deno.stat(path).catch(() => null))?.ino) {
        return file;
      }
    } catch (error) {
      file.close();
      throw error;
    }
    file.close();
    if (!locked) {
      // The owner writes its state right after locking; give it a moment to appear.
      throw taken(
        await pollUntil(() => readStateFile<T>(path), { intervalMs: 10, timeoutMs: 200 }),
      );
    }
  }
}
