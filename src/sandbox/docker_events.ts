/**
 * Container deaths pushed by the docker engine: one `docker events` stream per watch, filtered
 * to this admin's containers and to the events that tell how a container ended (`kill`, `oom`,
 * `die`; `destroy` ends what is remembered of a container). When the stream drops (the engine
 * restarts, the docker process is killed) it is resumed with `--since` the last event it gave,
 * after a bounded backoff; events seen already are skipped. The engine replays only the last
 * few hundred events, and none from before its restart, so a resumed stream also tells the
 * listener of the gap (onGap) for it to check what should run. Each stream
 * also ends by itself (`--until`) after a few minutes and is resumed at once: a `docker events`
 * process outlives an admin killed outright (SIGKILL) by no more than that.
 */
import { type Logger, silentLogger } from "../common/log.ts";
import type { ExitListener, SandboxExit } from "./backend.ts";
import { type DockerCli, tail } from "./docker_cli.ts";
import { abortableSleep } from "./tool_process.ts";

/** The fields of a `docker events --format '{{json .}}'` line rock reads. */
interface DockerEvent {
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

/** Options of a ContainerExitWatch. */
export interface ContainerExitWatchOptions {
  /** `docker events --filter` values (`label=...`), on top of the container and event filters. */
  filters: string[];
  /** Whether a container with these attributes (its labels among them) is this admin's. */
  owns(attributes: Record<string, string>): boolean;
  /** Told of each owned container that dies while it is not being removed, and of gaps. */
  listener: ExitListener;
  logger?: Logger | undefined;
}

/** The events read: how a container ends, and `destroy` to forget it. */
const EVENTS = ["kill", "oom", "die", "destroy"];
/** First wait before a dropped stream is resumed, in milliseconds; it doubles up to the max. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A stream that ran this long before it dropped resumes after the first backoff again. */
const HEALTHY_MS = 10_000;
/** How long one stream runs (`--until`) before it is resumed, in milliseconds. */
const STREAM_MS = 5 * 60_000;

/** Follows `docker events` for container deaths until disposed. */
export class ContainerExitWatch implements AsyncDisposable {
  readonly #docker: DockerCli;
  readonly #options: ContainerExitWatchOptions;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  readonly #done: Promise<void>;
  /** Ids of containers this admin is removing: their `die` is no death. */
  readonly #removing = new Set<string>();
  /** The last signal a container got (`kill`), and containers the kernel killed for memory. */
  readonly #killed = new Map<string, number>();
  readonly #oom = new Set<string>();
  /** Engine time of the last event handled, in nanoseconds: where a resumed stream starts. */
  #since: bigint;

  /** Starts following events from now. */
  constructor(docker: DockerCli, options: ContainerExitWatchOptions) {
    this.#docker = docker;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    // From the moment of the watch, not from when docker has subscribed: nothing in between
    // is lost.
    this.#since = BigInt(Date.now()) * 1_000_000n;
    this.#done = this.#follow();
  }

  /** Container `id` is being removed by this admin: its death is not reported. */
  expectRemoval(id: string): void {
    this.#removing.add(id);
  }

  /** Stops the stream and waits until its docker process is gone. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  async #follow(): Promise<void> {
    let backoff = FIRST_BACKOFF_MS;
    let dropped = false;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (dropped) this.#options.listener.onGap();
      dropped = false;
      const started = performance.now();
      const until = Date.now() + STREAM_MS;
      const args = ["events", "--format", "{{json .}}", "--since", timeArg(this.#since)];
      args.push("--until", timeArg(BigInt(until) * 1_000_000n), "--filter", "type=container");
      for (const event of EVENTS) args.push("--filter", `event=${event}`);
      for (const filter of this.#options.filters) args.push("--filter", filter);
      let ended: string;
      try {
        const result = await this.#docker.follow(args, (line) => this.#read(line), { signal });
        // Its --until came: go on at once. Not by the exit code: a docker killed by a signal
        // shows 0 too. (An engine clock ahead of this one ends it early: that counts as a drop.)
        if (result.code === 0 && Date.now() >= until) {
          backoff = FIRST_BACKOFF_MS;
          continue;
        }
        ended = `exit code ${result.code}${result.stderr.trim() ? `: ${tail(result.stderr)}` : ""}`;
      } catch (error) {
        ended = (error as Error).message;
      }
      if (signal.aborted) return;
      dropped = true;
      if (performance.now() - started >= HEALTHY_MS) backoff = FIRST_BACKOFF_MS;
      // Said once while the engine stays away, not at every retry.
      const log = backoff === FIRST_BACKOFF_MS ? this.#logger.warn : this.#logger.debug;
      log("The docker events stream ended; resuming it", { ended, resume_in_ms: backoff });
      await abortableSleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /** Handles one line of the stream. */
  #read(line: string): void {
    let event: DockerEvent;
    let time: bigint;
    try {
      event = JSON.parse(line);
      // timeNano is beyond a double's precision: read its digits.
      time = BigInt(/"timeNano":(\d+)/.exec(line)?.[1] ?? "0");
    } catch {
      this.#logger.warn("Ignoring a docker events line that is not JSON", { line });
      return;
    }
    // A resumed stream starts at the last event handled: skip what was seen.
    if (time <= this.#since && time !== 0n) return;
    if (time > this.#since) this.#since = time;
    const id = event.Actor.ID;
    const attributes = event.Actor.Attributes ?? {};
    if (!this.#options.owns(attributes)) return;
    switch (event.Action) {
      case "kill":
        this.#killed.set(id, Number(attributes.signal));
        break;
      case "oom":
        this.#oom.add(id);
        break;
      case "die":
        if (!this.#removing.has(id)) this.#options.listener.onExit(this.#exitOf(id, attributes));
        break;
      case "destroy":
        this.#removing.delete(id);
        this.#killed.delete(id);
        this.#oom.delete(id);
        break;
    }
  }

  /** The exit of container `id` from its `die` event and what came before it. */
  #exitOf(id: string, attributes: Record<string, string>): SandboxExit {
    const exit: SandboxExit = { sandboxId: attributes.name ?? "", handle: id };
    if (/^\d+$/.test(attributes.exitCode ?? "")) exit.exitCode = Number(attributes.exitCode);
    const signal = this.#killed.get(id);
    if (signal !== undefined && signal > 0) exit.signal = signal;
    if (this.#oom.has(id)) exit.oomKilled = true;
    return exit;
  }
}

/** `--since` or `--until` for a time in nanoseconds: `<seconds>.<nanoseconds>`. */
function timeArg(nanos: bigint): string {
  const second = 1_000_000_000n;
  return `${nanos / second}.${String(nanos % second).padStart(9, "0")}`;
}
