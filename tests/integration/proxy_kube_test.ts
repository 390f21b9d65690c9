/**
 * On the kubernetes backend (the stand-in API server; both ways the admin reaches pods) the paths
 * that go through the sandbox's rocklet work as on docker: an HTTP server in the pod reached
 * through the proxy (port prefix and v1.3's default port), and a WebSocket through the admin (a
 * terminal attached over `/sandboxes/{id}/pty`).
 */
import assert from "node:assert/strict";
import { Sandbox } from "../../src/sdk/sandbox.ts";
import { post, startAdminServer, startSandbox } from "../helpers/admin_server.ts";
import { kubeTest } from "../helpers/kube/kubectl.ts";

for (const access of ["pod-ip", "api-proxy"] as const) {
  kubeTest(
    `proxy (kubernetes, ${access}): HTTP to a pod's port, and a terminal over WebSocket`,
    async () => {
      await using admin = await startAdminServer("kubernetes", { node: true, kube: { access } });
      const id = await startSandbox(admin, "kproxy");
      const sandbox = new Sandbox({ baseUrl: admin.url, sandboxId: id });
      try {
        await post(admin.api, "/create_session", { sandbox_id: id });
        const served = await post(admin.api, "/run_in_session", {
          sandbox_id: id,
          command: "mkdir -p /srv && echo from-the-pod > /srv/hello.txt && " +
            "(cd /srv && nohup python3 -m http.server 8080 > /tmp/http.log 2>&1 &) && " +
            "for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080))' " +
            "2>/dev/null && break; sleep 0.1; done",
        });
        assert.equal(served.result?.exit_code, 0, JSON.stringify(served));
        const base = `${admin.api}/sandboxes/${id}/proxy`;
        const byPort = await fetch(`${base}/port/8080/hello.txt`);
        assert.equal(byPort.status, 200);
        assert.equal(await byPort.text(), "from-the-pod\n");
        // ROCK v1.3's shape: POST to the sandbox's port 8080 (http.server answers 501 to a POST,
        // which is the pod's own answer passed on).
        const v13 = await fetch(`${base}/hello.txt`, { method: "POST", body: "{}" });
        assert.equal(v13.status, 501);
        await v13.body?.cancel();

        let text = "";
        const terminal = await sandbox.pty({
          command: "tty; echo cols=$(tput cols 2>/dev/null || stty size | cut -d' ' -f2); exit 9",
          cols: 90,
          onData: (data) => (text += new TextDecoder().decode(data)),
        });
        assert.equal(await terminal.exited, 9);
        assert.match(text, /\/dev\/pts\/\d+\r\ncols=90\r\n/);
      } finally {
        await sandbox.stop();
      }
    },
  );
}
