/**
 * `rock admin start --backend kubernetes` as a real process on the stand-in: it finds (or builds)
 * the runtime image of its own launcher, serves a sandbox, and ends its kubectl processes at
 * shutdown; a cluster it cannot reach, or a bad `k8s` section, fails the start with one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { get, post, startSandbox } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testRockletLauncher } from "../helpers/docker.ts";
import { testRuntimeImage } from "../helpers/kube/backend.ts";
import { kubeTest } from "../helpers/kube/kubectl.ts";
import { startKubeApiServer } from "../helpers/kube/stand_in.ts";
import { commandLines, runRock, spawnAdmin } from "../helpers/process.ts";
import { runtimeImageTag } from "../../src/sandbox/runtime_image.ts";

/** Pid and command line of every descendant of `pid`, read from /proc. */
async function descendants(pid: number): Promise<Map<number, string>> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry.name), ppid);
    } catch {
      // The process exited while we looked.
    }
  }
  const found = new Map<number, string>();
  const visit = async (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid !== parent || found.has(child)) continue;
      const cmdline = await Deno.readTextFile(`/proc/${child}/cmdline`).catch(() => "");
      found.set(child, cmdline.replaceAll("\0", " ").trim());
      await visit(child);
    }
  };
  await visit(pid);
  return found;
}

/** True while process `pid` exists with command line `cmdline` (not a recycled pid). */
async function alive(pid: number, cmdline: string): Promise<boolean> {
  const now = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => undefined);
  return now !== undefined && now.replaceAll("\0", " ").trim() === cmdline;
}

/** Runs `rock admin start --backend kubernetes` with `config` to completion (a failed start). */
function runAdminStart(dataDir: string, config: string, env?: Record<string, string>) {
  const args = ["admin", "start", "--config", config, "--port", "0", "--data-dir", dataDir];
  return runRock([...args, "--backend", "kubernetes"], { env });
}

/** A data dir whose bundle cache is the tests' one (no bundling per test), and a config file. */
async function adminDirs(
  k8s: Record<string, unknown>,
): Promise<{ dataDir: string; config: string }> {
  const dataDir = await Deno.makeTempDir({ prefix: "rock-kube-cli-test-" });
  await Deno.symlink(
    join(Deno.env.get("TMPDIR") ?? "/tmp", "rock-test-cache"),
    join(dataDir, "cache"),
  );
  const config = join(dataDir, "rock.yml");
  await Deno.writeTextFile(config, stringify({ k8s }));
  return { dataDir, config };
}

kubeTest(
  "rock admin start --backend kubernetes uses its launcher's runtime image, serves a sandbox, and ends its kubectl processes at shutdown",
  async () => {
    await using standIn = await startKubeApiServer();
    // The image of the tests' launcher: the admin's, with its bundles from the same cache, must
    // get the same tag, so it finds this one built.
    const image = await testRuntimeImage();
    assert.equal(image, await runtimeImageTag(await testRockletLauncher(), TEST_IMAGE));
    const { dataDir, config } = await adminDirs({
      kubeconfig: standIn.kubeconfigPath,
      runtime_image_base: TEST_IMAGE,
      runtime_image_pull_policy: "Never",
      access: "api-proxy",
    });
    const admin = await spawnAdmin(dataDir, {
      config,
      extra: ["--backend", "kubernetes"],
      env: standIn.env,
    });
    let children = new Map<number, string>();
    try {
      const api = `${admin.url}/apis/envs/sandbox/v1`;
      const id = await startSandbox({ api }, "kcli", { memory: "512m", cpus: 0.5 });
      const run = await post(api, "/execute", {
        sandbox_id: id,
        command: "echo $((6 * 7))",
        shell: true,
      });
      assert.equal(run.result.stdout, "42\n", JSON.stringify(run));
      assert.equal((await get(api, `/get_status?sandbox_id=${id}`)).result.state, "running");

      children = await descendants(admin.child.pid);
      const kubectls = [...children.values()].filter((line) => line.includes("kubectl"));
      assert.ok(kubectls.some((line) => / get pods .*--watch/.test(line)), kubectls.join("\n"));
      assert.ok(kubectls.some((line) => / proxy /.test(line)), kubectls.join("\n"));
      assert.ok(kubectls.length <= 3, `kubectl processes: ${kubectls.join("\n")}`);

      await post(api, "/stop", { sandbox_id: id });
    } finally {
      admin.child.kill("SIGTERM");
      await admin.child.status;
      const stderr = await admin.stderr;
      assert.match(stderr, new RegExp(`Kubernetes runtime image ready.*${image}`), stderr);
      await Deno.remove(dataDir, { recursive: true });
    }
    const left: string[] = [];
    for (const [pid, cmdline] of children) if (await alive(pid, cmdline)) left.push(cmdline);
    assert.deepEqual(left, [], "every process the admin started ended with it");
  },
);

kubeTest(
  "rock admin start --backend kubernetes fails with one line naming kubectl's complaint when the cluster does not answer",
  async () => {
    // A port nothing listens on: bind one, let it go.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const dir = await Deno.makeTempDir({ prefix: "rock-kube-cli-test-" });
    try {
      const kubeconfig = join(dir, "kubeconfig");
      await Deno.writeTextFile(
        kubeconfig,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "gone", cluster: { server: `http://127.0.0.1:${port}` } }],
          users: [{ name: "u", user: {} }],
          contexts: [{ name: "gone", context: { cluster: "gone", user: "u", namespace: "x" } }],
          "current-context": "gone",
        }),
      );
      const { dataDir, config } = await adminDirs({
        kubeconfig,
        runtime_image: "rock-runtime:unused",
      });
      const run = await runAdminStart(dataDir, config, { KUBECACHEDIR: join(dir, "cache") });
      assert.equal(run.code, 1, run.stderr);
      const lines = run.stderr.trim().split("\n").filter((line) => line.startsWith("error:"));
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0] ?? "", /kubectl/);
      assert.match(lines[0] ?? "", /refused/);
      const left = (await commandLines()).filter((line) => line.includes(kubeconfig));
      assert.deepEqual(left, [], "no kubectl of the failed admin is left");
      await Deno.remove(dataDir, { recursive: true });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kubeTest(
  "rock admin start --backend kubernetes exits 2 naming what is wrong in a bad k8s section",
  async () => {
    for (
      const [k8s, complaint] of [
        [{ access: "through-the-wall" }, /k8s\.access/],
        [
          { kubeconfig: "/no/such/kubeconfig" },
          /kubeconfig "\/no\/such\/kubeconfig" does not exist/,
        ],
      ] as const
    ) {
      const { dataDir, config } = await adminDirs(k8s);
      try {
        const run = await runAdminStart(dataDir, config);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, complaint);
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      } finally {
        await Deno.remove(dataDir, { recursive: true });
      }
    }
  },
);
