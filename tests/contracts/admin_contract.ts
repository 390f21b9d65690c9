/**
 * One set of expectations for the admin over real HTTP, run against every backend: lifecycle,
 * data plane, billing, and bad input. Each test stops what it starts.
 */
import assert from "node:assert/strict";
import { BACKEND_TRAITS, ROCKLET_PORT } from "../../src/sandbox/backend.ts";
import { seededBytes, sha256Hex } from "../helpers/bytes.ts";
import {
  type AdminServer,
  get,
  post,
  startAdminServer,
  startSandbox,
  type TestAdminOptions,
  type TestBackend,
  waitRunning,
} from "../helpers/admin_server.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

/** Registers one test (Deno.test, or dockerTest for docker). */
export type Register = (name: string, fn: () => Promise<void>) => void;

/** Stops quietly (cleanup in finally). */
async function stopQuietly(admin: AdminServer, id: string) {
  await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
}

/**
 * get_status fields ROCK's TypeScript SDK (rl-rock) parses as a value or nothing: its schema
 * refuses null in any of them, so its getStatus() throws on a null.
 */
const VALUE_OR_ABSENT = [
  "sandbox_id",
  "status",
  "port_mapping",
  "host_name",
  "host_ip",
  "image",
  "gateway_version",
  "swe_rex_version",
  "user_id",
  "experiment_id",
  "namespace",
  "cpus",
  "memory",
];

/** The states ROCK's later SDKs accept in get_status (any other fails their schemas). */
const ROCK_STATES = ["pending", "running", "stopped", "archiving", "archived", "deleted"];

/**
 * Asserts a get_status result is one ROCK's later SDKs read: no null where ROCK's TypeScript SDK
 * reads a value or nothing, and a state of ROCK's.
 */
function assertReadableByRockSdks(result: Record<string, unknown>, when: string): void {
  const nulls = VALUE_OR_ABSENT.filter((field) => field in result && result[field] === null);
  assert.deepEqual(nulls, [], `${when}: null in ${JSON.stringify(result)}`);
  assert.ok(ROCK_STATES.includes(String(result.state)), `${when}: state ${result.state}`);
}

/** Registers the admin contract for `type` with `register`. */
export function defineAdminContract(
  type: TestBackend,
  register: Register,
  options: { label?: string; admin?: TestAdminOptions } = {},
): void {
  const label = `admin (${options.label ?? type})`;

  register(
    `${label}: a sandbox goes start_async -> running -> data plane -> stopped with one billing record`,
    async () => {
      await using admin = await startAdminServer(type, options.admin);
      const id = testSandboxId("life");
      try {
        const started = await post(admin.api, "/start_async", {
          sandbox_id: id,
          image: TEST_IMAGE,
          pull: "never",
          memory: "1g",
          cpus: 1,
          unknown_field: "ignored",
        });
        assert.equal(started.status, "Success");
        assert.equal(started.result.sandbox_id, id);
        const pending = await get(admin.api, `/get_status?sandbox_id=${id}`);
        assert.ok(["pending", "running"].includes(pending.result.state));
        const running = await waitRunning(admin.api, id);
        assert.equal(running.result.state, "running");
        assert.equal(running.result.is_alive, true);
        // Every phase the backend reports succeeded; limits show only where they are enforced.
        const traits = BACKEND_TRAITS[type];
        assert.deepEqual(Object.keys(running.result.status), [...traits.phases]);
        for (const phase of traits.phases) {
          assert.equal(running.result.status[phase].status, "success", phase);
        }
        // Limits a backend does not enforce are left out.
        assert.deepEqual(
          [running.result.cpus, running.result.memory],
          traits.enforcesLimits ? [1, "1g"] : [undefined, undefined],
        );
        assertReadableByRockSdks(running.result, "running");
        // A pod has an address of its own (127.0.x.y on the stand-in).
        if (type === "kubernetes") assert.match(running.result.host_ip, /^127\./);
        else assert.equal(running.result.host_ip, "127.0.0.1");
        assert.match(running.result.create_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
        assert.ok(Number(running.result.port_mapping[String(ROCKLET_PORT)]) > 0);
        const alive = await get(admin.api, `/is_alive?sandbox_id=${id}`);
        assert.equal(alive.result.is_alive, true);

        assert.equal(
          (await post(admin.api, "/create_session", { sandbox_id: id, session: "s" })).status,
          "Success",
        );
        const ok = await post(admin.api, "/run_in_session", {
          sandbox_id: id,
          session: "s",
          command: "cd /tmp && echo hi",
        });
        assert.deepEqual([ok.status, ok.result.output, ok.result.exit_code], ["Success", "hi", 0]);
        const seven = await post(admin.api, "/run_in_session", {
          sandbox_id: id,
          session: "s",
          command: "(exit 7)",
          check: "silent",
        });
        assert.equal(seven.result.exit_code, 7);
        const raised = await post(admin.api, "/run_in_session", {
          sandbox_id: id,
          session: "s",
          command: "(exit 7)",
        });
        assert.equal(raised.status, "Failed");
        assert.equal(raised.result.code, 6000);
        assert.equal(raised.result.exit_code, 7);
        assert.match(raised.error!, /exit code 7/);

        const path = `/tmp/rock-admin-${crypto.randomUUID()}.txt`;
        assert.equal(
          (await post(admin.api, "/write_file", { sandbox_id: id, path, content: "héllo" })).status,
          "Success",
        );
        assert.equal(
          (await post(admin.api, "/read_file", { sandbox_id: id, path })).result.content,
          "héllo",
        );

        const data = seededBytes(256 * 1024, 5);
        const form = new FormData();
        form.set("sandbox_id", id);
        form.set("target_path", `${path}.bin`);
        form.set("file", new Blob([data]), "blob.bin");
        const uploaded = await (await fetch(`${admin.api}/upload`, { method: "POST", body: form }))
          .json();
        assert.equal(uploaded.status, "Success", JSON.stringify(uploaded));
        const downloaded = await fetch(
          `${admin.api}/download?sandbox_id=${id}&path=${encodeURIComponent(`${path}.bin`)}`,
        );
        assert.equal(
          await sha256Hex(new Uint8Array(await downloaded.arrayBuffer())),
          await sha256Hex(data),
        );

        const executed = await post(admin.api, "/execute", {
          sandbox_id: id,
          command: "echo out; echo err >&2; exit 3",
          shell: true,
        });
        assert.deepEqual(executed.result, { stdout: "out\n", stderr: "err\n", exit_code: 3 });
        const stats = await get(admin.api, `/get_sandbox_statistics?sandbox_id=${id}`);
        assert.equal(typeof stats.result.mem, "number");

        const stopped = await post(admin.api, "/stop", { sandbox_id: id });
        assert.deepEqual([stopped.status, stopped.result], ["Success", `${id} stopped`]);
        const after = await get(admin.api, `/get_status?sandbox_id=${id}`);
        assert.equal(after.result.state, "stopped");
        assert.equal(after.result.is_alive, false);
        assert.ok(after.result.stop_time);
        assertReadableByRockSdks(after.result, "stopped");
        const billing = await admin.store.billing.of(id);
        assert.equal(billing.length, 1);
        assert.ok((billing[0]?.duration_seconds ?? -1) >= 0);
        const logLines = (await Deno.readTextFile(`${admin.dataDir}/billing.log`)).trim().split(
          "\n",
        );
        const line = logLines.map((l) => JSON.parse(l)).find((r) => r.sandbox_id === id);
        assert.equal(line.state, "stopped");
        assert.ok(!JSON.stringify(line).includes("password"));
        assert.ok(
          !(await admin.backend.list()).some((s) => s.sandboxId === id),
          "the sandbox is gone from the backend",
        );
        const again = await post(admin.api, "/stop", { sandbox_id: id });
        assert.equal(again.status, "Success", "stop is idempotent");
        assert.equal((await admin.store.billing.of(id)).length, 1, "one billing record only");
        const late = await post(admin.api, "/run_in_session", {
          sandbox_id: id,
          session: "s",
          command: "true",
        });
        assert.equal(late.status, "Failed");
        assert.equal(late.result.code, 4000);
      } finally {
        await stopQuietly(admin, id);
      }
    },
  );

  register(
    `${label}: a stopped sandbox restarts under its id and runs commands; deleted, get_status shows it only with include_all_states`,
    async () => {
      await using admin = await startAdminServer(type, options.admin);
      const id = await startSandbox(admin, "restart");
      try {
        const refused = await post(admin.api, "/restart", { sandbox_id: id });
        assert.deepEqual([refused.status, refused.result.code], ["Failed", 4000]);
        assert.match(refused.error!, /it is running; only a stopped or failed sandbox restarts/);
        const running = await post(admin.api, "/delete", { sandbox_id: id });
        assert.deepEqual([running.status, running.result.code], ["Failed", 4000]);
        assert.match(running.error!, /it is running; stop it first/);
        // In the sandbox's own files (its working directory: a local sandbox's private one).
        const marker = `rock-restart-${crypto.randomUUID()}`;
        const wrote = await post(admin.api, "/execute", {
          sandbox_id: id,
          command: `echo x > ${marker} && test -e ${marker}`,
          shell: true,
        });
        assert.equal(wrote.result.exit_code, 0, JSON.stringify(wrote));
        await post(admin.api, "/stop", { sandbox_id: id });
        const stopped = await get(admin.api, `/get_status?sandbox_id=${id}`);
        assert.deepEqual([stopped.result.state, stopped.result.failure_kind], ["stopped", "user"]);

        // Answered as a start: the same id, pending at once, then running.
        for (const path of ["/restart", `/sandboxes/${id}/restart`]) {
          const restarted = await post(admin.api, path, { sandbox_id: id });
          assert.equal(restarted.status, "Success", `${path}: ${restarted.error}`);
          assert.equal(restarted.result.sandbox_id, id);
          const status = await waitRunning(admin.api, id);
          assert.equal(status.result.is_alive, true, JSON.stringify(status.result));
          for (const field of ["stop_time", "stop_reason", "failure_reason", "failure_kind"]) {
            assert.equal(status.result[field], null, field);
          }
          const echoed = await post(admin.api, "/execute", {
            sandbox_id: id,
            command: `echo again; test -e ${marker}`,
            shell: true,
          });
          // A fresh start from the image: what the last run wrote is gone.
          assert.deepEqual(echoed.result, { stdout: "again\n", stderr: "", exit_code: 1 });
          await post(admin.api, "/stop", { sandbox_id: id });
        }
        assert.equal((await admin.store.billing.of(id)).length, 3, "one record per run");

        const deleted = await post(admin.api, "/delete", { sandbox_id: id });
        assert.deepEqual([deleted.status, deleted.result], ["Success", `${id} deleted`]);
        const hidden = await get(admin.api, `/get_status?sandbox_id=${id}`);
        assert.deepEqual([hidden.status, hidden.result.code], ["Failed", 4000]);
        assert.match(hidden.error!, /not found: it was deleted/);
        const all = await get(admin.api, `/get_status?sandbox_id=${id}&include_all_states=true`);
        assert.equal(all.result.state, "deleted");
        assert.equal(all.result.failure_kind, "user");
        assert.match(all.result.delete_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
        const unknown = await post(admin.api, "/delete", { sandbox_id: testSandboxId("never") });
        assert.equal(unknown.status, "Success", "an unknown id counts as deleted");
        const gone = await post(admin.api, "/restart", { sandbox_id: id });
        assert.deepEqual([gone.status, gone.result.code], ["Failed", 4000]);
      } finally {
        await stopQuietly(admin, id);
      }
    },
  );

  register(
    `${label}: start-request headers become metadata and list filters and pages them`,
    async () => {
      await using admin = await startAdminServer(type, options.admin);
      const ids: string[] = [];
      const experiment = `exp-${crypto.randomUUID().slice(0, 6)}`;
      try {
        for (const user of ["alice", "bob", "alice"]) {
          const id = testSandboxId("meta");
          ids.push(id);
          const response = await fetch(`${admin.api}/start_async`, {
            method: "POST",
            headers: {
              "x-user-id": user,
              "x-experiment-id": experiment,
              "x-namespace": "ns1",
              "x-cluster": "zb",
            },
            body: JSON.stringify({
              sandbox_id: id,
              image: TEST_IMAGE,
              pull: "never",
              memory: "1g",
              cpus: 1,
            }),
          });
          assert.equal((await response.json()).status, "Success");
        }
        for (const id of ids) await waitRunning(admin.api, id);
        const alice = await get(admin.api, `/sandboxes?user_id=alice&experiment_id=${experiment}`);
        assert.equal(alice.result.total, 2);
        assert.ok(
          alice.result.items.every((i: { user_id: string; namespace: string }) =>
            i.user_id === "alice" && i.namespace === "ns1"
          ),
        );
        const page = await get(
          admin.api,
          `/sandboxes?experiment_id=${experiment}&page=1&page_size=2`,
        );
        assert.deepEqual([page.result.items.length, page.result.total, page.result.has_more], [
          2,
          3,
          true,
        ]);
        const page2 = await get(
          admin.api,
          `/sandboxes?experiment_id=${experiment}&page=2&page_size=2`,
        );
        assert.deepEqual([page2.result.items.length, page2.result.has_more], [1, false]);
        const batch = await post(admin.api, "/sandboxes/batch", {
          sandbox_ids: [ids[2], "no-such-id", ids[0]],
        });
        assert.deepEqual(
          batch.result.statuses.map((s: { sandbox_id: string }) => s.sandbox_id),
          [ids[2], ids[0]],
        );
        await post(admin.api, "/stop", { sandbox_id: ids[1] });
        const stoppedOnly = await get(
          admin.api,
          `/sandboxes?experiment_id=${experiment}&state=stopped`,
        );
        assert.deepEqual(
          stoppedOnly.result.items.map((i: { sandbox_id: string }) => i.sandbox_id),
          [ids[1]],
        );
      } finally {
        for (const id of ids) {
          await stopQuietly(admin, id);
        }
      }
    },
  );

  register(
    `${label}: 25 malformed requests each get a 4000-coded Failed envelope and the admin keeps serving`,
    async () => {
      await using admin = await startAdminServer(type, options.admin);
      const id = await startSandbox(admin, "bad");
      try {
        const cases: Array<[string, unknown, RegExp]> = [
          ["/start_async", "{not json", /Invalid JSON body/],
          ["/start_async", "[]", /expected an object/],
          ["/start_async", { cpus: "two" }, /field "cpus"/],
          ["/start_async", { cpus: 17 }, /cpus 17 exceeds the maximum of 16/],
          ["/start_async", { memory: "65g" }, /memory "65g" exceeds/],
          ["/start_async", { memory: "lots" }, /field "memory"/],
          ["/start_async", { pull: "sometimes" }, /field "pull"/],
          ["/start_async", { auto_clear_time_minutes: 1.5 }, /field "auto_clear_time_minutes"/],
          ["/start_async", { sandbox_id: "bad id!" }, /field "sandbox_id"/],
          ["/start_async", { sandbox_id: id, image: TEST_IMAGE, pull: "never" }, /already exists/],
          ["/stop", {}, /field "sandbox_id"/],
          ["/stop", { sandbox_id: "no-such-sandbox" }, /not found/],
          ["/run_in_session", { sandbox_id: id }, /field "command"/],
          ["/run_in_session", { sandbox_id: id, command: 1 }, /field "command"/],
          ["/run_in_session", { sandbox_id: "no-such-sandbox", command: "true" }, /not found/],
          [
            "/run_in_session",
            { sandbox_id: id, command: "true", session: "never-created" },
            /never-created/,
          ],
          ["/create_session", { sandbox_id: id, env: { A: 1 } }, /field "env.A"/],
          ["/execute", { sandbox_id: id, command: 3 }, /field "command"/],
          ["/execute", { sandbox_id: id, command: [] }, /argument list is empty/],
          ["/read_file", { sandbox_id: id }, /field "path"/],
          ["/read_file", { sandbox_id: id, path: "/no/such/file" }, /no such file/],
          ["/write_file", { sandbox_id: id, path: "/tmp/x" }, /field "content"/],
          ["/sandboxes/batch", { sandbox_ids: "x" }, /field "sandbox_ids"/],
          [
            "/sandboxes/batch",
            { sandbox_ids: Array.from({ length: 2001 }, (_, i) => `s${i}`) },
            /exceed the maximum of 2000/,
          ],
        ];
        for (const [path, body, pattern] of cases) {
          const reply = await post(admin.api, path, body);
          assert.equal(reply.status, "Failed", `${path} ${JSON.stringify(body).slice(0, 80)}`);
          assert.equal(reply.result.code, 4000, `${path}: ${reply.error}`);
          assert.match(reply.error!, pattern, `${path}: ${reply.error}`);
          assert.match(reply.message, / failed$/);
        }
        const badList = await get(admin.api, "/sandboxes?page_size=0");
        assert.deepEqual([badList.status, badList.result.code], ["Failed", 4000]);
        assert.equal((await get(admin.api, "/get_status?sandbox_id=nope")).result.code, 4000);
        assert.deepEqual(await (await fetch(`${admin.url}/`)).json(), { message: "hello, ROCK!" });
        assert.equal(
          (await post(admin.api, "/run_in_session", {
            sandbox_id: id,
            session: "default",
            command: "true",
          })).result.code,
          4000,
        );
      } finally {
        await stopQuietly(admin, id);
      }
    },
  );
}
