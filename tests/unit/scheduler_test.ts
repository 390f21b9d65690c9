/** The admin scheduler: intervals, no overlap, failures recorded and retried, custom tasks. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAdminApp } from "../../src/admin/app.ts";
import {
  BaseTask,
  type TaskContext,
  type TaskResult,
} from "../../src/admin/scheduler/base_task.ts";
import { loadTask, Scheduler } from "../../src/admin/scheduler/scheduler.ts";
import { BillingLogRotationTask } from "../../src/admin/scheduler/tasks/maintenance.ts";
import { ConfigError } from "../../src/common/errors.ts";
import { managerFixture } from "../helpers/admin_server.ts";

async function fixture() {
  const f = await managerFixture("rock-scheduler-test-");
  return Object.assign(f, {
    context: { manager: f.manager, store: f.store, backend: f.backend, dataDir: f.dir },
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class CountingTask extends BaseTask {
  runs = 0;
  runAction(): Promise<TaskResult> {
    this.runs++;
    return Promise.resolve({ runs: this.runs });
  }
}

class SlowTask extends BaseTask {
  active = 0;
  maxActive = 0;
  runs = 0;
  async runAction(ctx: TaskContext): Promise<TaskResult> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.runs++;
    await Promise.race([
      sleep(250),
      new Promise((resolve) => ctx.signal.addEventListener("abort", resolve)),
    ]);
    this.active--;
  }
}

class FlakyTask extends BaseTask {
  calls = 0;
  runAction(): Promise<TaskResult> {
    this.calls++;
    if (this.calls === 1) return Promise.reject(new Error("disk not ready"));
    return Promise.resolve({ recovered: true });
  }
}

Deno.test("Scheduler runs an interval task, never overlaps a slow one, and records a failure then a retry", async () => {
  await using f = await fixture();
  const counting = new CountingTask({ intervalSeconds: 0.05 });
  const slow = new SlowTask({ intervalSeconds: 0.05 });
  const flaky = new FlakyTask({ intervalSeconds: 0.05 });
  const scheduler = new Scheduler([
    { task: counting, taskClass: "CountingTask" },
    { task: slow, taskClass: "SlowTask" },
    { task: flaky, taskClass: "FlakyTask" },
  ], f.context);
  try {
    await scheduler.start(0);
    const deadline = Date.now() + 5000;
    while ((counting.runs < 4 || slow.runs < 2 || flaky.calls < 2) && Date.now() < deadline) {
      await sleep(20);
    }
  } finally {
    await scheduler.close();
  }
  assert.ok(counting.runs >= 4, `interval task ran ${counting.runs} times`);
  assert.equal(slow.maxActive, 1, "a slow task never overlaps itself");
  assert.ok(
    slow.runs >= 2 && slow.runs < counting.runs,
    `slow ${slow.runs} vs counting ${counting.runs}`,
  );
  const records = new Map((await scheduler.list()).map((r) => [r.task_name, r]));
  assert.equal(records.get("CountingTask")?.status, "success");
  assert.deepEqual(records.get("CountingTask")?.result, {
    runs: records.get("CountingTask")?.runs,
  });
  const flakyRecord = records.get("FlakyTask")!;
  assert.ok(flakyRecord.failures >= 1, "the failure was recorded");
  assert.equal(flakyRecord.status, "success", "and the next interval ran it again");
  assert.ok(flakyRecord.duration_ms !== null && flakyRecord.last_run !== null);
});

Deno.test("Scheduler records the error of a failing run in the task list", async () => {
  await using f = await fixture();
  const flaky = new FlakyTask({ intervalSeconds: 60, name: "flaky" });
  const scheduler = new Scheduler([{ task: flaky, taskClass: "FlakyTask" }], f.context);
  await scheduler.start(60_000);
  await scheduler.runOnce(flaky);
  const [record] = await scheduler.list();
  assert.ok(record);
  assert.deepEqual([record.task_name, record.status, record.error, record.failures], [
    "flaky",
    "failed",
    "disk not ready",
    1,
  ]);
  const app = createAdminApp({ manager: f.context.manager, timeZone: "Asia/Shanghai", scheduler });
  const listed = await (await app.request("/apis/envs/sandbox/v1/scheduler/tasks")).json();
  assert.equal(listed.status, "Success");
  assert.equal(listed.result.tasks[0].error, "disk not ready");
  assert.match(listed.result.tasks[0].last_run, /\+08:00$/);
  await scheduler.close();
});

Deno.test("loadTask() loads a custom task from a file and maps ROCK's class paths to built-ins", async () => {
  await using f = await fixture();
  const baseTask = new URL("../../src/admin/scheduler/base_task.ts", import.meta.url).href;
  const path = join(f.dir, "hello_task.ts");
  await Deno.writeTextFile(
    path,
    `import { BaseTask } from "${baseTask}";
export default class HelloTask extends BaseTask {
  async runAction(ctx) { return { greeting: this.params.greeting, sandboxes: (await ctx.manager.list({}, 1, 1)).total }; }
}
`,
  );
  const task = await loadTask({
    task_class: path,
    interval_seconds: 1,
    params: { greeting: "hi" },
  });
  assert.equal(task.name, "HelloTask");
  const scheduler = new Scheduler([{ task, taskClass: path }], f.context);
  await scheduler.start(60_000);
  await scheduler.runOnce(task);
  const [record] = await scheduler.list();
  assert.ok(record);
  assert.deepEqual([record.status, record.result], ["success", { greeting: "hi", sandboxes: 0 }]);
  await scheduler.close();

  const image = await loadTask({
    task_class: "rock.admin.scheduler.tasks.image_cleanup_task.ImageCleanupTask",
    interval_seconds: 3600,
    params: { disk_threshold: "1T" },
  });
  assert.equal(image.name, "ImageCleanupTask");
});

Deno.test("loadTask() fails clearly for an unknown class, a module without a task, a broken module, bad params", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "empty.ts"), "export const x = 1;\n");
    await Deno.writeTextFile(join(dir, "broken.ts"), "export default class {\n");
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ task_class: "NoSuchTask" }, /not a built-in task/],
      [{ task_class: join(dir, "empty.ts") }, /exports no class extending BaseTask/],
      [{ task_class: join(dir, "broken.ts") }, /Cannot load scheduler task_class/],
      [{ task_class: join(dir, "missing.ts") }, /Cannot load scheduler task_class/],
      [{ task_class: "ImageCleanupTask", params: { threshold: "lots" } }, /threshold "lots"/],
    ];
    for (const [config, pattern] of cases) {
      await assert.rejects(
        loadTask({ interval_seconds: 1, ...config } as never),
        (error: Error) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.match(error.message, pattern);
          return true;
        },
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("BillingLogRotationTask rotates the billing log past max_bytes and keeps `keep` files", async () => {
  await using f = await fixture();
  const task = new BillingLogRotationTask({
    intervalSeconds: 1,
    params: { max_bytes: 10, keep: 2 },
  });
  const ctx = { ...f.context, logger: undefined!, signal: new AbortController().signal };
  for (let i = 0; i < 4; i++) {
    await Deno.writeTextFile(join(f.dir, "billing.log"), `{"line": ${i}, "padding": "xxxxxxxx"}\n`);
    const result = await task.runAction(ctx) as { rotated: boolean };
    assert.equal(result.rotated, true);
    await sleep(2);
  }
  const names = [];
  for await (const entry of Deno.readDir(f.dir)) {
    if (entry.name.startsWith("billing.log.")) names.push(entry.name);
  }
  assert.equal(names.length, 2);
});
