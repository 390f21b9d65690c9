/** `SandboxGroup`: several sandboxes started with bounded concurrency and retries. */
import { type WithDefaults, withDefaults } from "../common/options.ts";
import { Sandbox, type SandboxConfig } from "./sandbox.ts";

/** How a group is created: a SandboxConfig plus the group's own settings (ROCK's defaults). */
export interface SandboxGroupConfig extends Omit<SandboxConfig, "sandboxId"> {
  /** How many sandboxes (default 2). */
  size?: number | undefined;
  /** How many start at once (default 2). */
  startConcurrency?: number | undefined;
  /** How many times a failed start is retried (default 3). */
  startRetryTimes?: number | undefined;
  /** Builds the config of sandbox `index` (default: the group's config as is). */
  configFor?: ((index: number) => SandboxConfig) | undefined;
}

/** A SandboxGroupConfig with the group's defaults applied. */
export type ResolvedSandboxGroupConfig = WithDefaults<
  SandboxGroupConfig,
  "size" | "startConcurrency" | "startRetryTimes"
>;

/** One member's outcome. */
export interface GroupMember {
  /** Position in the group. */
  index: number;
  /** The started sandbox, when it started. */
  sandbox?: Sandbox;
  /** The last start error, when it did not. */
  error?: Error | undefined;
  /** How many starts were tried. */
  attempts: number;
}

/** A group of sandboxes; `await using` stops them all. */
export class SandboxGroup implements AsyncDisposable {
  /** The group's configuration with defaults applied. */
  readonly config: ResolvedSandboxGroupConfig;
  /** Every member after start(), in index order. */
  members: GroupMember[] = [];

  /**
   * Creates the group; nothing starts until start(). A field left out or given as undefined
   * takes its default.
   */
  constructor(config: SandboxGroupConfig = {}) {
    this.config = withDefaults(
      { size: 2, startConcurrency: 2, startRetryTimes: 3 },
      config,
    );
  }

  /** The sandboxes that started. */
  get sandboxes(): Sandbox[] {
    return this.members.flatMap((m) => (m.sandbox ? [m.sandbox] : []));
  }

  /** The members that failed, each with its error. */
  get failures(): GroupMember[] {
    return this.members.filter((m) => m.error);
  }

  /**
   * Starts every member, at most `startConcurrency` at a time, retrying each failed start up to
   * `startRetryTimes` times. Never throws for a member: check `failures`.
   */
  async start(): Promise<this> {
    const { size, startConcurrency, startRetryTimes: retries, configFor, ...shared } = this.config;
    this.members = Array.from({ length: size }, (_, index) => ({ index, attempts: 0 }));
    let next = 0;
    const worker = async () => {
      while (next < size) {
        const member = this.members[next++];
        if (member === undefined) break;
        for (let attempt = 0; attempt <= retries; attempt++) {
          member.attempts = attempt + 1;
          const sandbox = new Sandbox(configFor?.(member.index) ?? shared);
          try {
            member.sandbox = await sandbox.start();
            member.error = undefined;
            break;
          } catch (error) {
            member.error = error as Error;
            await sandbox.stop().catch(() => {});
          }
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.max(1, startConcurrency) }, worker),
    );
    return this;
  }

  /** Stops every started member; returns the errors of the stops that failed. */
  async stop(): Promise<Error[]> {
    const results = await Promise.allSettled(this.sandboxes.map((s) => s.stop()));
    return results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
  }

  /** Stops every member, ignoring errors. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
