/**
 * The memory section of `deno task bench --scale`: host memory per idle sandbox, as the drop of the
 * host's available memory (/proc/meminfo MemAvailable) over 50 idle docker sandboxes divided by
 * 50, beside 50 bare containers of the same image running `sleep infinity`, in the same run. The
 * machine's other activity moves MemAvailable too, so each side is measured twice (bare,
 * sandboxes, bare, sandboxes) and the rocklet's own share is shown from its processes (Pss).
 */
import { DockerCli } from "../src/sandbox/docker_cli.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";
import { post } from "../tests/helpers/admin_server.ts";
import { type AdminProcess, startAdmin } from "./bench_data_plane.ts";

/** How many sandboxes (and bare containers) each round holds. */
const COUNT = 50;
/** How long the host settles before and after a batch starts, in milliseconds. */
const SETTLE_MS = 3_000;

/** MemAvailable in MiB. */
async function availableMiB(): Promise<number> {
  const meminfo = await Deno.readTextFile("/proc/meminfo");
  return Number(/MemAvailable:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024;
}

/** Sum of Pss (MiB) of the processes whose command line contains `marker`. */
async function pssOf(marker: string): Promise<{ mib: number; processes: number }> {
  let kib = 0;
  let processes = 0;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!cmdline.includes(marker)) continue;
      const rollup = await Deno.readTextFile(`/proc/${entry.name}/smaps_rollup`);
      kib += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      processes++;
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return { mib: kib / 1024, processes };
}

/** The MemAvailable drop per item while `start` has started COUNT of them (then `stop`). */
async function dropPerItem(
  start: () => Promise<void>,
  stop: () => Promise<void>,
  during?: () => Promise<void>,
): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const before = await availableMiB();
  try {
    await start();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = await availableMiB();
    await during?.();
    return (before - after) / COUNT;
  } finally {
    await stop();
  }
}

/** Starts a bare `sleep infinity` container of each name. */
async function startBare(docker: DockerCli, names: string[]): Promise<void> {
  for (const name of names) {
    await docker.run(["-d", "--name", name, TEST_IMAGE, "sleep", "infinity"]);
  }
}

/** Starts an idle sandbox of each id through `admin` (five at a time). */
async function startSandboxes(admin: AdminProcess, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 5) {
    await Promise.all(
      ids.slice(i, i + 5).map(async (id) => {
        const envelope = await post(admin.api, "/start", { sandbox_id: id, image: TEST_IMAGE });
        if (envelope.status !== "Success") {
          throw new Error(`Cannot start bench sandbox "${id}": ${envelope.error}`);
        }
      }),
    );
  }
}

/** Runs the memory section, or says why it is skipped. */
export async function scaleMemorySection(): Promise<void> {
  console.log(`\n== memory of ${COUNT} idle sandboxes, docker backend (--scale) ==`);
  const availability = await checkDocker();
  if (!availability.available) {
    console.log(`memory section skipped: ${availability.reason}`);
    return;
  }
  const docker = new DockerCli();
  await using admin = await startAdmin("docker");
  const bare: number[] = [];
  const sandboxes: number[] = [];
  let rocklets = { mib: 0, processes: 0 };
  for (let round = 0; round < 2; round++) {
    const names = Array.from({ length: COUNT }, () => testSandboxId("bench-bare-mem"));
    bare.push(
      await dropPerItem(() => startBare(docker, names), () => docker.remove(names).then(() => {})),
    );
    const ids = Array.from({ length: COUNT }, () => testSandboxId("bench-idle"));
    sandboxes.push(
      await dropPerItem(
        () => startSandboxes(admin, ids),
        async () => {
          for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
          await docker.remove(ids).catch(() => {});
        },
        async () => {
          rocklets = await pssOf("/rock/lib/rock.js");
        },
      ),
    );
  }
  const show = (values: number[]) => values.map((v) => v.toFixed(1)).join(", ");
  console.log(`baseline: bare \`sleep infinity\` container: ${show(bare)} MiB each (2 rounds)`);
  console.log(
    `idle sandbox: ${show(sandboxes)} MiB each (2 rounds; target <= 25 MiB); its rocklet's ` +
      `processes: ${(rocklets.mib / Math.max(1, rocklets.processes)).toFixed(1)} MiB Pss each ` +
      `(${rocklets.processes} found)`,
  );
}
