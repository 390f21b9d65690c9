/**
 * The memory section of `deno task bench --scale`: host memory per idle sandbox, as the drop of the
 * host's available memory (/proc/meminfo MemAvailable) over 50 idle docker sandboxes divided by
 * 50, beside 50 bare containers of the same image running `sleep infinity`, in the same run. The
 * machine's other activity moves MemAvailable too, so each side is measured three times,
 * alternately, the median reported, and beside it what is attributable to the containers alone:
 * their cgroups' memory plus docker's shim and proxy processes (Pss).
 */
import { DockerCli } from "../src/sandbox/docker_cli.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";
import { post } from "../tests/helpers/admin_server.ts";
import { type AdminProcess, startAdmin } from "./bench_data_plane.ts";

/** How many sandboxes (and bare containers) each round holds. */
const COUNT = 50;
/** How many times each side is measured (the median is reported). */
const ROUNDS = 3;
/** How long the host settles before and after a batch starts, in milliseconds. */
const SETTLE_MS = 3_000;
/** Docker's processes outside the containers: a shim per container, a proxy per port. */
const DOCKER_HELPERS = /^\S*(containerd-shim|docker-proxy)/;

/** What one round found per container, in MiB. */
interface Round {
  /** The MemAvailable drop over the batch. */
  drop: number;
  /** The containers' cgroups plus docker's shim and proxy processes. */
  attributed: number;
}

/** MemAvailable in MiB: the median of five readings 0.2 s apart. */
async function availableMiB(): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    const meminfo = await Deno.readTextFile("/proc/meminfo");
    readings.push(Number(/MemAvailable:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return median(readings);
}

/** Sum of Pss (MiB) of the processes whose command line matches `pattern`. */
async function pssOf(pattern: RegExp): Promise<{ mib: number; processes: number }> {
  let kib = 0;
  let processes = 0;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!pattern.test(cmdline)) continue;
      const rollup = await Deno.readTextFile(`/proc/${entry.name}/smaps_rollup`);
      kib += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      processes++;
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return { mib: kib / 1024, processes };
}

/** Memory charged to the containers' cgroups (v1 or v2), in MiB; 0 for one unreadable. */
async function cgroupMiB(ids: string[]): Promise<number> {
  let bytes = 0;
  for (const id of ids) {
    const files = [
      `/sys/fs/cgroup/memory/docker/${id}/memory.usage_in_bytes`,
      `/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.current`,
    ];
    for (const file of files) {
      const text = await Deno.readTextFile(file).catch(() => undefined);
      if (text === undefined) continue;
      bytes += Number(text);
      break;
    }
  }
  return bytes / 2 ** 20;
}

/** Starts a batch with `start` (returning its container ids), measures it, then `stop`s it. */
async function measureBatch(
  start: () => Promise<string[]>,
  stop: () => Promise<void>,
): Promise<Round> {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const before = await availableMiB();
  const helpersBefore = await pssOf(DOCKER_HELPERS);
  try {
    const containers = await start();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = await availableMiB();
    const helpers = (await pssOf(DOCKER_HELPERS)).mib - helpersBefore.mib;
    return {
      drop: (before - after) / COUNT,
      attributed: (await cgroupMiB(containers) + helpers) / COUNT,
    };
  } finally {
    await stop();
  }
}

/** Starts a bare `sleep infinity` container of each name; returns their ids. */
async function startBare(docker: DockerCli, names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const name of names) {
    ids.push(await docker.run(["-d", "--name", name, TEST_IMAGE, "sleep", "infinity"]));
  }
  return ids;
}

/** Starts an idle sandbox of each id (five at a time); returns their container ids. */
async function startSandboxes(
  admin: AdminProcess,
  docker: DockerCli,
  ids: string[],
): Promise<string[]> {
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
  return (await docker.inspectContainers(ids)).map((container) => container.Id);
}

/** The median of `values`. */
function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
}

/** `median MiB (rounds: a, b, c)` of `key` over `rounds`. */
function show(rounds: Round[], key: keyof Round): string {
  const values = rounds.map((round) => round[key]);
  return `${median(values).toFixed(1)} MiB (rounds: ${values.map((v) => v.toFixed(1)).join(", ")})`;
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
  const bare: Round[] = [];
  const sandboxes: Round[] = [];
  let rocklets = { mib: 0, processes: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const names = Array.from({ length: COUNT }, () => testSandboxId("bench-bare-mem"));
    bare.push(
      await measureBatch(() => startBare(docker, names), async () => {
        await docker.remove(names);
      }),
    );
    const ids = Array.from({ length: COUNT }, () => testSandboxId("bench-idle"));
    sandboxes.push(
      await measureBatch(async () => {
        const containers = await startSandboxes(admin, docker, ids);
        rocklets = await pssOf(/^\/rock\/bin\/deno\0/);
        return containers;
      }, async () => {
        for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
        await docker.remove(ids).catch(() => {});
      }),
    );
  }
  console.log(
    `baseline: bare \`sleep infinity\` container, MemAvailable drop ${show(bare, "drop")}`,
  );
  console.log(`idle sandbox, MemAvailable drop ${show(sandboxes, "drop")} (target <= 25 MiB)`);
  console.log(
    `attributed (container cgroup + docker's shim and proxies): bare ${
      show(bare, "attributed")
    }; idle sandbox ${show(sandboxes, "attributed")}; a rocklet process alone ${
      (rocklets.mib / Math.max(1, rocklets.processes)).toFixed(1)
    } MiB Pss`,
  );
}
