/**
 * Built-in maintenance tasks: stop expired sandboxes, remove orphan sandboxes, rotate the
 * billing log.
 */
import { join } from "node:path";
import { BaseTask, type TaskContext, type TaskResult } from "../base_task.ts";

/** Stops sandboxes idle past auto_clear_time_minutes. */
export class ExpiredSandboxTask extends BaseTask {
  /** One sweep. */
  async runAction(ctx: TaskContext): Promise<TaskResult> {
    return { stopped: await ctx.manager.sweepExpired() };
  }
}

/** Removes sandboxes the backend runs under this deployment's label that no active row owns. */
export class OrphanCleanupTask extends BaseTask {
  /** One pass. */
  async runAction(ctx: TaskContext): Promise<TaskResult> {
    return { removed: await ctx.manager.removeOrphans() };
  }
}

/**
 * Rotates `<data_dir>/billing.log` when it exceeds `max_bytes` (default 100 MiB), keeping
 * `keep` rotated files (default 10) named `billing.log.<epoch ms>`.
 */
export class BillingLogRotationTask extends BaseTask {
  /** One check. */
  async runAction(ctx: TaskContext): Promise<TaskResult> {
    const maxBytes = Number(this.params.max_bytes ?? 100 * 1024 * 1024);
    const keep = Number(this.params.keep ?? 10);
    const log = join(ctx.dataDir, "billing.log");
    const size = await Deno.stat(log).then((s) => s.size, () => 0);
    if (size <= maxBytes) return { size, rotated: false };
    const rotated = `${log}.${Date.now()}`;
    await Deno.rename(log, rotated);
    const old: string[] = [];
    for await (const entry of Deno.readDir(ctx.dataDir)) {
      if (/^billing\.log\.\d+$/.test(entry.name)) old.push(entry.name);
    }
    old.sort();
    const removed = old.slice(0, Math.max(0, old.length - keep));
    for (const name of removed) await Deno.remove(join(ctx.dataDir, name)).catch(() => {});
    return { size, rotated: true, file: rotated, removed };
  }
}
