/**
 * Leases: the expiry clock's timers (warning, then the stop at the end, a moved end honoured),
 * and the manager's timeout (a deadline keep-alives do not move) with its wire view.
 */
import assert from "node:assert/strict";
import { ExpiryClock, warningBefore } from "../../src/admin/expiry.ts";
import type { SandboxRecord } from "../../src/admin/store.ts";
import { silentLogger } from "../../src/common/log.ts";
import { SandboxNotFoundError, SandboxStoppedError } from "../../src/common/errors.ts";
import { StartRequest } from "../../src/protocol/admin.ts";
import { toStatusResponse } from "../../src/admin/sandbox_info.ts";
import { managerFixture, testRecord } from "../helpers/admin_server.ts";

/** A clock over one row the test moves; what it did, with the time since the start. */
function clockOver(row: { current: SandboxRecord }, warningMs: number) {
  const started = Date.now();
  const did: { what: string; at: number; end: number }[] = [];
  const clock = new ExpiryClock({
    listEnding: (before) =>
      Promise.resolve(row.current.expire_at < before ? [{ ...row.current }] : []),
    get: () => Promise.resolve({ ...row.current }),
    expire: (record) => {
      did.push({ what: "expire", at: Date.now() - started, end: record.expire_at - started });
      row.current = { ...row.current, state: "stopped" };
      return Promise.resolve();
    },
    warn: (record) =>
      void did.push({ what: "warn", at: Date.now() - started, end: record.expire_at - started }),
    warningMs,
    now: Date.now,
    logger: silentLogger,
  }, 60_000);
  return { clock, did, started };
}

Deno.test("ExpiryClock warns before a lease ends and stops the sandbox at its end, not before", async () => {
  const row = { current: testRecord("a", { timeout_seconds: 1, expire_at: Date.now() + 600 }) };
  const { clock, did } = clockOver(row, 60_000);
  clock.start();
  try {
    while (!did.some((d) => d.what === "expire")) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await clock.stop();
  }
  assert.deepEqual(did.map((d) => d.what), ["warn", "expire"]);
  // Half the 1 s lease before its end (the 60 s warning is longer than the lease).
  assert.ok(did[0]!.at >= 50 && did[0]!.at < 400, JSON.stringify(did));
  assert.ok(did[1]!.at >= 600, JSON.stringify(did));
});

Deno.test("ExpiryClock follows an end moved after its warning: no stop at the old end, a new warning, the stop at the new end", async () => {
  const row = { current: testRecord("a", { timeout_seconds: 0.4, expire_at: Date.now() + 400 }) };
  const { clock, did, started } = clockOver(row, 60_000);
  clock.start();
  try {
    while (!did.some((d) => d.what === "warn")) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Extended as POST /timeout does: the clock is told, as the manager tells it.
    row.current = { ...row.current, timeout_seconds: 0.8, expire_at: Date.now() + 800 };
    clock.plan({ ...row.current });
    while (!did.some((d) => d.what === "expire")) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await clock.stop();
  }
  const newEnd = row.current.expire_at - started;
  assert.deepEqual(did.map((d) => d.what), ["warn", "warn", "expire"]);
  assert.equal(did[1]!.end, newEnd);
  assert.ok(did[2]!.at >= newEnd, JSON.stringify({ did, newEnd }));
});

Deno.test("warningBefore() is the configured time, or half a shorter lease", () => {
  assert.equal(warningBefore(testRecord("a", { auto_clear_minutes: 30 }), 60_000), 60_000);
  assert.equal(warningBefore(testRecord("a", { auto_clear_minutes: 1 }), 60_000), 30_000);
  assert.equal(warningBefore(testRecord("a", { timeout_seconds: 10 }), 60_000), 5_000);
});

Deno.test("SandboxManager.setTimeout() makes the lease a deadline from now that get_status does not move, and the sweeper stops it with why", async () => {
  await using f = await managerFixture();
  const record = await f.manager.start(
    StartRequest.parse({ sandbox_id: "rock-test-timeout", auto_clear_time_minutes: 30 }),
  );
  try {
    const idle = toStatusResponse(record, "UTC");
    assert.match(idle.expire_reason ?? "", /^no keep-alive for 30 minutes/);
    assert.equal(idle.timeout_seconds, null);
    const set = await f.manager.setTimeout(record.sandbox_id, 90);
    assert.equal(set.timeout_seconds, 90);
    assert.equal(set.expire_at, Date.parse("2026-01-21T11:39:30Z"));
    const status = toStatusResponse(set, "UTC");
    assert.equal(status.expire_time, "2026-01-21T11:39:30.000+00:00");
    assert.match(status.expire_reason ?? "", /^timeout of 90 s/);
    f.advance(1);
    await f.manager.getStatus(record.sandbox_id); // no longer a keep-alive for this lease
    assert.deepEqual(await f.manager.sweepExpired(), []);
    f.advance(0.6);
    assert.deepEqual(await f.manager.sweepExpired(), [record.sandbox_id]);
    const stopped = await f.store.sandboxes.get(record.sandbox_id);
    assert.equal(stopped?.stop_reason, "expired: timeout of 90 s passed");
    assert.equal(stopped?.failure_kind, "expired");
    await assert.rejects(f.manager.setTimeout(record.sandbox_id, 10), SandboxStoppedError);
    await assert.rejects(f.manager.setTimeout("rock-test-none", 10), SandboxNotFoundError);
  } finally {
    await f.manager.stop(record.sandbox_id).catch(() => {});
  }
});

Deno.test("SandboxManager starts a sandbox with timeout_seconds leased from when it runs", async () => {
  await using f = await managerFixture();
  const record = await f.manager.start(
    StartRequest.parse({ sandbox_id: "rock-test-timeout-start", timeout_seconds: 45 }),
  );
  try {
    assert.equal(record.timeout_seconds, 45);
    assert.equal(record.expire_at, record.start_time! + 45_000);
  } finally {
    await f.manager.stop(record.sandbox_id);
  }
});
