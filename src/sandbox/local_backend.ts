/**
 * The local backend: each sandbox is a rocklet process on this machine, in its own session (so
 * it outlives an admin restart) with a private work dir. It needs no engine and works anywhere;
 * it isolates nothing beyond a directory and enforces no memory or cpu limit.
 *
 * The "label" is a state file `<workRoot>/<id>/sandbox.json` holding the pid and its start time,
 * so a recycled pid is never mistaken for the sandbox.
 *
 * A watch learns of a rocklet's death from its exit status when this admin started it, and
 * otherwise (rocklets an earlier admin started) from /proc, checked every 200 ms for those only.
 */
import { constants, hostname } from "node:os";
import { spawnDetached } from "../common/detached.ts";
import { RockError } from "../common/errors.ts";
import { isProcessAlive, readProcessInfo, waitForExit } from "../common/process_state.ts";
import { killDescendants, listDescendants, signalProcess } from "../runtime/process_tree.ts";
import type {
  ExitListener,
  ListedSandbox,
  LocalBackendConfig,
  LoggingBackend,
  PlaceHooks,
  Placement,
  SandboxExit,
  SandboxSpec,
  WatchingBackend,
} from "./backend.ts";
import { ROCKLET_PORT } from "./backend.ts";
import type { RockletLauncher } from "./rocklet_launcher.ts";

interface StateFile {
  sandbox_id: string;
  pid: number;
  /** Start time of the process in clock ticks since boot (field 22 of /proc/PID/stat). */
  start_ticks: number;
  port: number;
}

/** How often rocklets this admin did not start are looked up in /proc while watched, in ms. */
const POLL_MS = 200;

/** A rocklet known to run: its pid and start time, and its process when this admin started it. */
interface Rocklet {
  pid: number;
  startTicks: number;
  child?: Deno.ChildProcess;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Rocklet processes on this machine. */
export class LocalBackend implements LoggingBackend, WatchingBackend {
  readonly type = "local" as const;
  readonly #root: string;
  readonly #launcher: RockletLauncher;
  /** Rocklets placed or found running and not removed since, by sandbox id. */
  readonly #rocklets = new Map<string, Rocklet>();
  readonly #listeners = new Set<ExitListener>();
  /** Sandboxes being removed, and, while adoptions run (see #adopt), those removed meanwhile. */
  readonly #removing = new Set<string>();
  #adopting = 0;
  readonly #removedWhileAdopting = new Set<string>();
  #poll: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  /** Creates the backend; sandboxes live under `config.workRoot`. */
  constructor(config: LocalBackendConfig) {
    this.#root = config.workRoot;
    this.#launcher = config.launcher;
  }

  #dir(id: string): string {
    return `${this.#root}/${id}`;
  }

  /** Starts a rocklet process for `spec` on a free loopback port. */
  async place(spec: SandboxSpec, hooks: PlaceHooks): Promise<Placement> {
    hooks.onPhase({
      name: "process_start",
      status: "running",
      message: "starting the rocklet process on this host (no image, no isolation)",
    });
    const dir = this.#dir(spec.sandboxId);
    const work = `${dir}/work`;
    try {
      await Deno.mkdir(work, { recursive: true });
    } catch (error) {
      throw new RockError(
        `Cannot start sandbox "${spec.sandboxId}": cannot create "${work}": ${
          (error as Error).message
        }`,
      );
    }
    const port = freePort();
    const command = this.#launcher.hostCommand("127.0.0.1", port);
    // The rocklet must hold no pipe to an admin that may exit before it: output goes to a log.
    const child = spawnDetached(command, `${dir}/rocklet.log`, {
      cwd: work,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: work,
        ROCK_SANDBOX_ID: spec.sandboxId,
        ...this.#launcher.hostEnv(),
        ...spec.env,
      },
    });
    const info = await readProcessInfo(child.pid);
    const ticks = info && info.state !== "Z" ? info.startTicks : undefined;
    if (ticks === undefined) {
      const log = await Deno.readTextFile(`${dir}/rocklet.log`).catch(() => "");
      await this.remove(spec.sandboxId);
      throw new RockError(
        `Cannot start sandbox "${spec.sandboxId}": the rocklet exited at once: ${log.slice(-500)}`,
      );
    }
    const state: StateFile = {
      sandbox_id: spec.sandboxId,
      pid: child.pid,
      start_ticks: ticks,
      port,
    };
    await Deno.writeTextFile(`${dir}/sandbox.json`, JSON.stringify(state));
    this.#follow(spec.sandboxId, { pid: child.pid, startTicks: ticks, child });
    if (hooks.signal?.aborted) {
      await this.remove(spec.sandboxId);
      throw new RockError(`Cannot start sandbox "${spec.sandboxId}": start was cancelled`);
    }
    return this.#placement(state);
  }

  #placement(state: StateFile): Placement {
    return {
      hostIp: "127.0.0.1",
      hostName: hostname(),
      portMapping: { [String(ROCKLET_PORT)]: state.port },
      handle: String(state.pid),
    };
  }

  async #read(id: string): Promise<StateFile | undefined> {
    try {
      return JSON.parse(await Deno.readTextFile(`${this.#dir(id)}/sandbox.json`)) as StateFile;
    } catch {
      return undefined;
    }
  }

  #running(state: StateFile): Promise<boolean> {
    return isProcessAlive(state.pid, state.start_ticks);
  }

  /**
   * Stops the rocklet (SIGTERM lets it close its sessions), then kills whatever is left of its
   * process tree, and removes the work dir.
   */
  async remove(sandboxId: string): Promise<void> {
    // Forgotten first: its end is no death.
    this.#rocklets.delete(sandboxId);
    this.#removing.add(sandboxId);
    try {
      await this.#stopRocklet(sandboxId);
      await Deno.remove(this.#dir(sandboxId), { recursive: true }).catch(() => {});
    } finally {
      this.#removing.delete(sandboxId);
      if (this.#adopting > 0) this.#removedWhileAdopting.add(sandboxId);
    }
  }

  /** Ends the rocklet of `sandboxId` and every process it started, if it runs. */
  async #stopRocklet(sandboxId: string): Promise<void> {
    const state = await this.#read(sandboxId);
    if (state && await this.#running(state)) {
      const tree = await listDescendants(state.pid);
      signalProcess(state.pid, "SIGTERM");
      if (!(await waitForExit(state.pid, state.start_ticks, 3000))) {
        await killDescendants(state.pid);
        signalProcess(state.pid, "SIGKILL");
      }
      // Session shells run in sessions of their own: kill any the rocklet did not.
      for (const entry of tree) {
        if (await isProcessAlive(entry.pid, entry.startTicks)) {
          signalProcess(-entry.pid, "SIGKILL");
        }
      }
    }
  }

  /**
   * Reports each rocklet that dies from now on, but not the ones this backend removes: with its
   * exit code or signal when this admin started it, else found gone in /proc (a dead pid, or
   * one that now names a process started at another time). It has no gaps.
   */
  watch(listener: ExitListener): AsyncDisposable {
    this.#listeners.add(listener);
    this.#poll ??= setInterval(() => this.#pollProc(), POLL_MS);
    const adopted = this.#adopt();
    return {
      [Symbol.asyncDispose]: async () => {
        this.#listeners.delete(listener);
        if (this.#listeners.size === 0) {
          clearInterval(this.#poll);
          this.#poll = undefined;
        }
        await adopted;
      },
    };
  }

  /** How the sandbox's rocklet ended, or undefined while it runs (its exit status is not known). */
  async check(sandboxId: string): Promise<SandboxExit | undefined> {
    const state = await this.#read(sandboxId);
    if (state && await this.#running(state)) return undefined;
    return { sandboxId, handle: state ? String(state.pid) : "" };
  }

  /**
   * Watches the rocklets of an earlier admin (found by their state files), also those that died
   * already: the next look in /proc reports them.
   */
  async #adopt(): Promise<void> {
    this.#adopting++;
    try {
      for (const listed of await this.list()) {
        const state = await this.#read(listed.sandboxId);
        const id = listed.sandboxId;
        // One removed while this looked is gone, not dead.
        if (
          state && !this.#rocklets.has(id) && !this.#removing.has(id) &&
          !this.#removedWhileAdopting.has(id)
        ) {
          this.#follow(id, { pid: state.pid, startTicks: state.start_ticks });
        }
      }
    } finally {
      if (--this.#adopting === 0) this.#removedWhileAdopting.clear();
    }
  }

  /** Knows `rocklet` runs sandbox `id`; when this admin started it, its exit status tells its end. */
  #follow(id: string, rocklet: Rocklet): void {
    this.#rocklets.set(id, rocklet);
    rocklet.child?.status.then((status) => {
      const exit: SandboxExit = { sandboxId: id, handle: String(rocklet.pid) };
      if (status.signal) {
        const signal = (constants.signals as Record<string, number>)[status.signal];
        if (signal !== undefined) exit.signal = signal;
      } else exit.exitCode = status.code;
      this.#ended(rocklet, exit);
    }, () => {});
  }

  /** Reports `exit` of `rocklet` unless it was removed (or replaced) meanwhile. */
  #ended(rocklet: Rocklet, exit: SandboxExit): void {
    if (this.#rocklets.get(exit.sandboxId) !== rocklet) return;
    this.#rocklets.delete(exit.sandboxId);
    for (const listener of this.#listeners) listener.onExit(exit);
  }

  /** Looks up in /proc the rocklets this admin did not start (no exit status comes for them). */
  async #pollProc(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      for (const [id, rocklet] of this.#rocklets) {
        if (rocklet.child || await isProcessAlive(rocklet.pid, rocklet.startTicks)) continue;
        this.#ended(rocklet, { sandboxId: id, handle: String(rocklet.pid) });
      }
    } finally {
      this.#polling = false;
    }
  }

  /** The last `tail` lines of the sandbox's `rocklet.log`; empty when the sandbox is gone. */
  async logs(sandboxId: string, tail: number): Promise<string> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(`${this.#dir(sandboxId)}/rocklet.log`, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "";
      throw new RockError(
        `Cannot read logs of sandbox "${sandboxId}": ${(error as Error).message}`,
      );
    }
    try {
      // Read only the end: at most 1 MiB, enough for any sensible tail.
      const size = (await file.stat()).size;
      const start = Math.max(0, size - 1024 * 1024);
      await file.seek(start, Deno.SeekMode.Start);
      const bytes = new Uint8Array(size - start);
      for (let read = 0; read < bytes.length;) {
        const n = await file.read(bytes.subarray(read));
        if (n === null) break;
        read += n;
      }
      const lines = new TextDecoder().decode(bytes).replace(/\n$/, "").split("\n");
      return lines.slice(-tail).join("\n");
    } finally {
      file.close();
    }
  }

  /** Sandboxes with a state file under the work root. */
  async list(): Promise<ListedSandbox[]> {
    const found: ListedSandbox[] = [];
    try {
      for await (const entry of Deno.readDir(this.#root)) {
        if (!entry.isDirectory) continue;
        const state = await this.#read(entry.name);
        if (!state) {
          found.push({ sandboxId: entry.name, handle: "", running: false });
          continue;
        }
        const running = await this.#running(state);
        found.push({
          sandboxId: state.sandbox_id,
          handle: String(state.pid),
          running,
          placement: running ? this.#placement(state) : undefined,
        });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return found;
  }
}
