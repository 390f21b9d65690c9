/** Leases and leadership of admins sharing one database, on a real libsql file opened twice. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SandboxStore } from "../../src/admin/store.ts";
import type { LeaseHolder } from "../../src/admin/store.ts";
import { LEADER_LEASE, Leadership, thisAdmin } from "../../src/admin/leadership.ts";
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two stores (two connections) on one fresh database file. */
async function twoStores(): Promise<[SandboxStore, SandboxStore, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix: "rock-lease-test-" });
  const url = `file:${join(dir, "rock.db")}`;
  const a = await SandboxStore.open(url);
  const b = await SandboxStore.open(url);
  return [a, b, async () => {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }];
}

/** A holder on another host (its process cannot be checked from here). */
function remote(id: string): LeaseHolder {
  return { id, host: `other-host-${id}`, pid: 1, startTicks: null };
}

Deno.test("LeaseTable.acquire() gives a lease to one holder until it expires or is released", async () => {
  const [a, b, cleanup] = await twoStores();
  try {
    assert.equal(await a.leases.acquire("leader", remote("a"), 400), true);
    assert.equal(await b.leases.acquire("leader", remote("b"), 400), false, "held by a");
    assert.equal(await a.leases.acquire("leader", remote("a"), 400), true, "a renews");
    assert.equal((await b.leases.get("leader"))?.holder.id, "a");
    await delay(500);
    assert.equal((await b.leases.get("leader"))?.live, false, "a stopped renewing");
    assert.equal(await b.leases.acquire("leader", remote("b"), 400), true, "expired: b takes it");
    assert.equal(await a.leases.acquire("leader", remote("a"), 400), false, "a lost it");
    await b.leases.release("leader", "a");
    assert.equal((await a.leases.get("leader"))?.holder.id, "b", "only the holder releases");
    await b.leases.release("leader", "b");
    assert.equal(await a.leases.acquire("leader", remote("a"), 60_000), true, "released: free");
    assert.equal(await b.leases.takeOver("leader", "b", remote("b"), 1000), false, "b is not it");
    assert.equal(await b.leases.takeOver("leader", "a", remote("b"), 1000), true);
  } finally {
    await cleanup();
  }
});

Deno.test("LeaseTable.acquire() lets exactly one of many concurrent holders win", async () => {
  const [a, b, cleanup] = await twoStores();
  try {
    const tries = Array.from(
      { length: 20 },
      (_, i) => (i % 2 ? a : b).leases.acquire("leader", remote(`h${i}`), 60_000),
    );
    const won = (await Promise.all(tries)).filter(Boolean);
    assert.equal(won.length, 1);
  } finally {
    await cleanup();
  }
});

Deno.test("Leadership elects one admin and hands over at once when the leader closes", async () => {
  const [a, b, cleanup] = await twoStores();
  const changes: string[] = [];
  const leadA = new Leadership({
    leases: a.leases,
    self: remote("a"),
    ttlMs: 300,
    onChange: (leader) => void changes.push(`a:${leader}`),
  });
  const leadB = new Leadership({
    leases: b.leases,
    self: remote("b"),
    ttlMs: 300,
    onChange: (leader) => void changes.push(`b:${leader}`),
  });
  try {
    await leadA.start();
    await leadB.start();
    assert.equal(leadA.isLeader, true);
    assert.equal(leadB.isLeader, false);
    assert.equal(await leadB.leader(), "a");
    assert.equal(await leadB.isAlive("a"), true);
    assert.equal(await leadB.isAlive("nobody"), false);
    await leadA.close();
    assert.equal(await leadB.isAlive("a"), false, "a gave its own lease up");
    await delay(250); // b's next renewal (every ttl / 3) finds the lease free
    assert.equal(leadB.isLeader, true);
    assert.deepEqual(changes, ["a:true", "a:false", "b:true"]);
  } finally {
    await leadA.close();
    await leadB.close();
    await cleanup();
  }
});

Deno.test("Leadership takes the lease at once from a holder on this host whose process ended", async () => {
  const [a, b, cleanup] = await twoStores();
  const ended = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await ended.status;
  const self = await thisAdmin();
  const dead: LeaseHolder = { ...self, id: "dead", pid: ended.pid };
  const leadership = new Leadership({ leases: b.leases, self, ttlMs: 60_000, onChange() {} });
  try {
    assert.equal(await a.leases.acquire(LEADER_LEASE, dead, 60_000), true);
    assert.equal(await a.leases.acquire("admin:dead", dead, 60_000), true);
    await leadership.start();
    assert.equal(leadership.isLeader, true, "a live lease of an ended process is no lease");
    assert.equal(await leadership.isAlive("dead"), false);
  } finally {
    await leadership.close();
    await cleanup();
  }
});
