/**
 * One set of expectations run against every backend, each on its real engine with the real
 * rocklet: place (phases in order, the placement's rocklet answers), list, remove, logs, deaths
 * (when the backend watches), what an admin restart sees, and a spec that cannot be placed.
 * A backend joins with one file: a BackendSubject whose environment builds its backends.
 */
import assert from "node:assert/strict";
import {
  type Backend,
  backendTraits,
  type BackendType,
  isLogging,
  isWatching,
  type PhaseUpdate,
  type Placement,
  ROCKLET_PORT,
  type SandboxExit,
  type SandboxSpec,
} from "../../src/sandbox/backend.ts";
import { RockletClient } from "../../src/sdk/rocklet_client.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { waitUntil } from "../helpers/wait.ts";

/** Registers one test (Deno.test, or dockerTest for docker). */
export type Register = (name: string, fn: (t: Deno.TestContext) => Promise<void>) => void;

/** A spec the backend cannot place, and the class of the error that says so. */
export interface Unplaceable {
  spec: SandboxSpec;
  // deno-lint-ignore no-explicit-any
  error: abstract new (...args: any[]) => Error;
}

/** Where one test's sandboxes run: an engine and a work dir; dispose removes what is left. */
export interface BackendEnvironment extends AsyncDisposable {
  /**
   * A new backend instance for deployment `deployment` on this environment, as an admin
   * (re)start builds one; another deployment is another admin (docker: its label, local: its
   * data dir).
   */
  backend(deployment: string): Promise<Backend>;
  /** Kills sandbox `id` from outside with SIGKILL (its container or rocklet process), as a crash. */
  kill(id: string, placement: Placement): Promise<void>;
  /** What is left of sandbox `id` on the engine or disk (container names, dirs); empty: nothing. */
  remains(id: string): Promise<string[]>;
}

/** One kind of backend under the contract. */
export interface BackendSubject {
  type: BackendType;
  register: Register;
  /** A fresh environment for one test. */
  environment(): Promise<BackendEnvironment>;
  /** A spec of sandbox `id` this backend cannot place; left out where every spec places. */
  unplaceable?(id: string): Unplaceable;
}

/** A spec of the test image with small limits. */
export function contractSpec(sandboxId: string): SandboxSpec {
  return { sandboxId, image: TEST_IMAGE, pull: "never", memoryBytes: 512 * 1024 ** 2, cpus: 1 };
}

/** Places `spec` on `backend`, recording the phases it reports. */
async function placeRecording(
  backend: Backend,
  spec: SandboxSpec,
): Promise<{ placement: Placement; phases: PhaseUpdate[] }> {
  const phases: PhaseUpdate[] = [];
  const placement = await backend.place(spec, { onPhase: (update) => phases.push(update) });
  return { placement, phases };
}

/** A client of the rocklet at `placement`. */
function rockletAt(placement: Placement): RockletClient {
  return new RockletClient(
    `http://${placement.hostIp}:${placement.portMapping[String(ROCKLET_PORT)]}`,
  );
}

/** Resolves once the rocklet at `placement` answers /is_alive. */
async function waitAlive(placement: Placement): Promise<void> {
  const client = rockletAt(placement);
  await waitUntil(
    () => client.isAlive().then((alive) => alive.is_alive, () => false),
    `the rocklet on port ${placement.portMapping[String(ROCKLET_PORT)]} answers /is_alive`,
  );
}

/** Registers the backend contract for `subject`. */
export function defineBackendContract(subject: BackendSubject): void {
  const { type, register } = subject;
  const label = `backend (${type})`;
  const traits = backendTraits(type);

  register(
    `${label}: place() reports its phases in order, list() sees the sandbox running, logs() has its rocklet's output, remove() leaves nothing`,
    async (t) => {
      await using env = await subject.environment();
      const backend = await env.backend("one");
      const id = testSandboxId(`contract-${type}`);
      try {
        const { placement, phases } = await placeRecording(backend, contractSpec(id));

        await t.step("phases follow the kind's order and end with the last one running", () => {
          const order = phases.map((update) => traits.phases.indexOf(update.name));
          assert.ok(order.every((index) => index >= 0), JSON.stringify(phases));
          assert.deepEqual(order, [...order].sort((a, b) => a - b), JSON.stringify(phases));
          assert.deepEqual(
            [phases.at(-1)?.name, phases.at(-1)?.status],
            [traits.phases.at(-1), "running"],
          );
          assert.ok(phases.every((update) => update.status !== "failed"), JSON.stringify(phases));
        });

        await t.step("the placement's rocklet answers /is_alive", () => waitAlive(placement));

        await t.step("list() sees it running, with its placement", async () => {
          const listed = (await backend.list()).find((sandbox) => sandbox.sandboxId === id);
          assert.ok(listed, "not listed");
          assert.equal(listed.running, true);
          assert.equal(listed.handle, placement.handle);
          assert.equal(listed.placement?.hostIp, placement.hostIp);
          assert.deepEqual(listed.placement?.portMapping, placement.portMapping);
        });

        if (isLogging(backend)) {
          await t.step("logs() returns the last lines its rocklet wrote", async () => {
            await waitUntil(
              async () => /rocklet listening on/.test(await backend.logs(id, 20)),
              "the rocklet's start line in its logs",
            );
            assert.equal((await backend.logs(id, 1)).split("\n").length, 1);
          });
        }

        await t.step("remove() removes it and everything of it, and is quiet again", async () => {
          await backend.remove(id);
          assert.equal((await backend.list()).some((sandbox) => sandbox.sandboxId === id), false);
          assert.deepEqual(await env.remains(id), []);
          await backend.remove(id);
          if (isLogging(backend)) assert.equal(await backend.logs(id, 10), "");
        });
      } finally {
        await backend.remove(id);
      }
    },
  );

  register(
    `${label}: a new backend instance (an admin restart) lists the sandbox running and can remove it; another deployment's does not list it`,
    async () => {
      await using env = await subject.environment();
      const first = await env.backend("one");
      const id = testSandboxId(`contract-${type}-restart`);
      try {
        const { placement } = await placeRecording(first, contractSpec(id));
        await waitAlive(placement);
        const restarted = await env.backend("one");
        const listed = (await restarted.list()).find((sandbox) => sandbox.sandboxId === id);
        assert.ok(listed, "not listed after a restart");
        assert.equal(listed.running, true);
        assert.equal(listed.handle, placement.handle);
        assert.deepEqual(listed.placement?.portMapping, placement.portMapping);
        await rockletAt(listed.placement!).isAlive();

        const other = await env.backend("two");
        assert.equal((await other.list()).some((sandbox) => sandbox.sandboxId === id), false);
        await other.remove(id);
        assert.equal(
          (await restarted.list()).some((sandbox) => sandbox.sandboxId === id && sandbox.running),
          true,
          "another deployment's remove() left it running",
        );

        await restarted.remove(id);
        assert.deepEqual(await env.remains(id), []);
      } finally {
        await first.remove(id);
      }
    },
  );

  register(
    `${label}: watch() reports a sandbox killed from outside with signal 9, not one the backend removes; check() tells it ended`,
    async () => {
      await using env = await subject.environment();
      const backend = await env.backend("one");
      if (!isWatching(backend)) return;
      const killed = testSandboxId(`contract-${type}-killed`);
      const removed = testSandboxId(`contract-${type}-removed`);
      const exits: SandboxExit[] = [];
      try {
        const [a, b] = await Promise.all([
          backend.place(contractSpec(killed), { onPhase() {} }),
          backend.place(contractSpec(removed), { onPhase() {} }),
        ]);
        await Promise.all([waitAlive(a), waitAlive(b)]);
        await using _watch = backend.watch({ onExit: (exit) => exits.push(exit), onGap() {} });
        assert.equal(await backend.check(killed), undefined, "check() of a running sandbox");

        await backend.remove(removed);
        await env.kill(killed, a);
        await waitUntil(() => exits.length > 0, "the watch reports the killed sandbox");
        assert.deepEqual(exits.map((exit) => [exit.sandboxId, exit.handle, exit.signal]), [
          [killed, a.handle, 9],
        ]);
        assert.equal((await backend.check(killed))?.sandboxId, killed);
      } finally {
        await backend.remove(killed);
        await backend.remove(removed);
      }
    },
  );

  const unplaceable = subject.unplaceable;
  if (unplaceable) {
    register(
      `${label}: place() of a spec it cannot place fails with a typed error and leaves nothing behind`,
      async () => {
        await using env = await subject.environment();
        const backend = await env.backend("one");
        const id = testSandboxId(`contract-${type}-bad`);
        const { spec, error } = unplaceable(id);
        try {
          const phases: PhaseUpdate[] = [];
          await assert.rejects(
            backend.place(spec, { onPhase: (update) => phases.push(update) }),
            (thrown) => thrown instanceof error && thrown.message.includes(id),
          );
          assert.equal(phases.at(-1)?.status, "failed", JSON.stringify(phases));
          assert.equal((await backend.list()).some((sandbox) => sandbox.sandboxId === id), false);
          assert.deepEqual(await env.remains(id), []);
        } finally {
          await backend.remove(id);
        }
      },
    );
  }
}
