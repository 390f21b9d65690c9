/** A custom scheduler task: each run counts the admin's running sandboxes. */
import { BaseTask, type TaskContext } from "../../src/admin/scheduler/base_task.ts";

/** Counts running sandboxes; the count is the run's result. */
export default class RunningSandboxCount extends BaseTask {
  /** One run; throwing records a failure. */
  async runAction(ctx: TaskContext): Promise<{ running: number }> {
    const { total } = await ctx.manager.list({ state: "running" }, 1, 1);
    return { running: total };
  }
}
