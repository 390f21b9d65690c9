/**
 * The kubernetes section of `deno task bench`: in-process admins on the docker backend and on
 * the kubernetes backend (a stand-in API server whose pods run on the same docker engine, real
 * kubectl), in both access modes (pod IP, and the API server's pod proxy through `kubectl
 * proxy`):
 * - start_async until get_status says `is_alive`, beside the same on the docker backend;
 * - run_in_session (`true`) through the admin, beside the same on the docker backend;
 * - the kubectl processes each kubernetes admin spawned for its starts and stops.
 * Skipped, with the reason, when docker, the test image or kubectl is missing.
 */
import type { KubernetesBackend } from "../src/sandbox/kubernetes_backend.ts";
import { type AdminServer, post, startAdminServer } from "../tests/helpers/admin_server.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";
import { hostTools } from "../tests/helpers/host_tools.ts";
import type { KubeAccess } from "../src/sandbox/backend.ts";
import { type BenchKit, resultOf, startUntilAlive, type Stats } from "./bench_admin.ts";

/** One admin the section measures. */
interface Subject {
  label: string;
  backend: "docker" | "kubernetes";
  access?: KubeAccess;
}

const SUBJECTS: Subject[] = [
  { label: "docker backend", backend: "docker" },
  { label: "kubernetes, pod-ip", backend: "kubernetes", access: "pod-ip" },
  { label: "kubernetes, api-proxy", backend: "kubernetes", access: "api-proxy" },
];

/** Times `n` starts until alive (each stopped after) and run_in_session on one more sandbox. */
async function benchSubject(
  admin: AdminServer,
  options: { n: number; runs: number; kit: BenchKit },
): Promise<{ start: Stats; run: Stats }> {
  const { n, runs, kit } = options;
  const starts: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = testSandboxId("bench-kube");
    const begin = performance.now();
    await startUntilAlive(admin.api, id);
    starts.push(performance.now() - begin);
    resultOf("/stop", await post(admin.api, "/stop", { sandbox_id: id }));
  }
  const id = testSandboxId("bench-kube-run");
  resultOf("/start", await post(admin.api, "/start", { sandbox_id: id, image: TEST_IMAGE }));
  try {
    resultOf(
      "/create_session",
      await post(admin.api, "/create_session", { sandbox_id: id, session: "b" }),
    );
    const body = { sandbox_id: id, session: "b", command: "true" };
    const run = await kit.measure(
      runs,
      Math.min(50, runs),
      async () => resultOf("/run_in_session", await post(admin.api, "/run_in_session", body)),
    );
    return { start: kit.stats(starts), run };
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
  }
}

/** Runs the kubernetes section (fewer iterations when `quick`), or says why it is skipped. */
export async function kubernetesSection(quick: boolean, kit: BenchKit): Promise<void> {
  console.log(
    `\n== kubernetes backend (stand-in) beside docker (${quick ? "quick" : "full"} run) ==`,
  );
  const reasons = [(await checkDocker()).reason, hostTools(["kubectl"]).reason].filter(Boolean);
  if (reasons.length > 0) {
    console.log(
      `kubernetes section skipped: ${reasons.join("; ")}; run scripts/setup_docker.sh and ` +
        "install kubectl to enable it",
    );
    return;
  }
  const n = quick ? 3 : 10;
  const runs = quick ? 100 : 1000;
  let baseline: { start: Stats; run: Stats } | undefined;
  for (const subject of SUBJECTS) {
    await using admin = await startAdminServer(subject.backend, {
      startupTimeoutMs: 60_000,
      kube: { access: subject.access },
    });
    const figures = await benchSubject(admin, { n, runs, kit });
    console.log(
      kit.row(`start_async -> alive (${subject.label})`, figures.start, baseline?.start),
    );
    console.log(
      kit.row(`run_in_session \`true\` (${subject.label})`, figures.run, baseline?.run),
    );
    if (subject.backend === "kubernetes") {
      const spawned = (admin.backend as KubernetesBackend).kubectlProcesses;
      console.log(
        `${`kubectl processes (${subject.label})`.padEnd(52)} ${spawned} for ${n + 1} starts ` +
          `and stops (the watch${subject.access === "api-proxy" ? ", the proxy" : ""} included)`,
      );
    }
    baseline ??= figures;
  }
}
