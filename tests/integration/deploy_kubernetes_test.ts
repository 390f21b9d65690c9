/**
 * deploy/kubernetes rendered by the real `kubectl kustomize` (no cluster needed): every object in
 * the rock namespace, the admins' Role never grants pods/exec, and the admin config it mounts is
 * one `rock admin start` accepts.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { readConfigFile } from "../../src/admin/config.ts";
import { hostTools } from "../helpers/host_tools.ts";
import { testRequiring } from "../helpers/requirement.ts";

const DEPLOY = fileURLToPath(new URL("../../deploy/kubernetes", import.meta.url));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  spec?: Record<string, unknown>;
}

async function render(): Promise<K8sObject[]> {
  const output = await new Deno.Command("kubectl", {
    args: ["kustomize", DEPLOY],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return parseAllDocuments(text).map((doc) => doc.toJS() as K8sObject);
}

testRequiring(
  { ...hostTools(["kubectl"]), tests: "deploy/kubernetes tests", remedy: "install kubectl" },
  "deploy/kubernetes renders with kubectl kustomize: all in namespace rock, no pods/exec, two admins on libsql",
  async () => {
    const objects = await render();
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    for (
      const expected of [
        "Namespace/rock",
        "ServiceAccount/rock-admin",
        "Role/rock-admin",
        "RoleBinding/rock-admin",
        "Deployment/rock-admin",
        "Service/rock-admin",
        "Deployment/rock-libsql",
        "PersistentVolumeClaim/rock-libsql",
        "Service/rock-libsql",
      ]
    ) {
      assert.ok(kinds.includes(expected), `${expected} in ${kinds.join(", ")}`);
    }
    for (const object of objects) {
      if (object.kind === "Namespace") continue;
      assert.equal(object.metadata.namespace, "rock", `${object.kind}/${object.metadata.name}`);
    }

    const role = objects.find((o) => o.kind === "Role")!;
    const granted = role.rules!.flatMap((rule) =>
      rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${resource}:${verb}`))
    );
    assert.ok(!granted.some((g) => g.startsWith("pods/exec") || g.startsWith("*")), granted.join());
    assert.ok(!role.rules!.some((rule) => rule.verbs.includes("*")));
    for (const verb of ["create", "get", "list", "watch", "delete", "patch"]) {
      assert.ok(granted.includes(`pods:${verb}`), `pods:${verb}`);
    }
    assert.ok(granted.includes("pods/log:get"));
    assert.ok(granted.includes("pods/proxy:get") && granted.includes("pods/proxy:create"));

    const admin = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "rock-admin")!;
    assert.equal(admin.spec!.replicas, 2);
    const text = JSON.stringify(admin);
    assert.match(text, /"--backend","kubernetes"/);
    assert.match(text, /"--db","http:\/\/rock-libsql:8080"/);
  },
);

Deno.test("deploy/kubernetes/rock.yml is a valid admin config with a k8s section", async () => {
  const file = await readConfigFile(join(DEPLOY, "rock.yml"));
  assert.equal(file.admin?.backend, "kubernetes");
  assert.equal(file.k8s?.namespace, "rock");
  assert.ok(file.k8s?.runtime_image);
});
