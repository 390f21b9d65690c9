/** X-Request-Id: from the client through the admin to a local sandbox's rocklet, in both logs. */
import assert from "node:assert/strict";
import { createLogger } from "../../src/common/log.ts";
import { get, post, startAdminServer, startSandbox } from "../helpers/admin_server.ts";

Deno.test("a request id given to the admin is in its response, its log line and the rocklet's", async () => {
  const lines: string[] = [];
  await using admin = await startAdminServer("local", {
    logger: createLogger("admin", { write: (line) => lines.push(line) }),
  });
  const id = await startSandbox(admin, "request-id");
  try {
    const call = async (path: string, body: unknown, requestId: string) => {
      const response = await fetch(`${admin.api}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": requestId },
        body: JSON.stringify(body),
      });
      assert.equal((await response.json()).status, "Success");
      return response.headers.get("x-request-id");
    };
    assert.equal(
      await call("/create_session", { sandbox_id: id, session: "s" }, "req-create-1"),
      "req-create-1",
    );
    assert.equal(
      await call("/run_in_session", { sandbox_id: id, session: "s", command: "true" }, "req-run.2"),
      "req-run.2",
    );
    // Not sane (a space, too long): the admin makes its own, and says which.
    const made = await call(
      "/run_in_session",
      { sandbox_id: id, session: "s", command: "true" },
      "a b",
    );
    assert.match(made!, /^[0-9a-f-]{36}$/);
    const mine = await call(
      "/run_in_session",
      { sandbox_id: id, session: "s", command: "true" },
      "x".repeat(129),
    );
    assert.notEqual(mine, "x".repeat(129));

    for (const requestId of ["req-create-1", "req-run.2", made!]) {
      const admins = lines.filter((line) => line.includes(`"request_id":"${requestId}"`));
      assert.equal(admins.length, 1, lines.join("\n"));
      assert.match(admins[0] ?? "", /INFO \[admin\] Request .*"method":"POST"/);
    }
    const logs = (await get(admin.api, `/get_logs?sandbox_id=${id}&tail=100`)).result
      .logs as string;
    for (const requestId of ["req-create-1", "req-run.2", made!]) {
      assert.match(
        logs,
        new RegExp(`INFO \\[rocklet\\] Request .*"request_id":"${requestId.replace(".", "\\.")}"`),
        logs,
      );
    }
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id });
  }
});
