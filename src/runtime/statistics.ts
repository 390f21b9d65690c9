/** Machine statistics for `/get_statistics`: cpu %, memory %, disk % of `/`, network bytes. */
import type { StatisticsResponse } from "../protocol/rocklet.ts";

async function readOr(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

async function cpuTimes(): Promise<{ idle: number; total: number }> {
  const line = (await readOr("/proc/stat")).split("\n")[0] ?? "";
  const values = line.split(/\s+/).slice(1).map(Number).filter((n) => !Number.isNaN(n));
  const total = values.reduce((a, b) => a + b, 0);
  return { idle: (values[3] ?? 0) + (values[4] ?? 0), total };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Samples cpu use over `sampleMs` and reads the rest once. Zeros where /proc is missing. */
export async function readStatistics(sampleMs = 100): Promise<StatisticsResponse> {
  const before = await cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = await cpuTimes();
  const total = after.total - before.total;
  const cpu = total > 0 ? 100 * (1 - (after.idle - before.idle) / total) : 0;

  const meminfo = await readOr("/proc/meminfo");
  const field = (name: string) =>
    Number(meminfo.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  const memTotal = field("MemTotal");
  const mem = memTotal > 0 ? 100 * (1 - field("MemAvailable") / memTotal) : 0;

  let disk = 0;
  try {
    const { stdout } = await new Deno.Command("df", {
      args: ["-Pk", "/"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const cols = new TextDecoder().decode(stdout).trim().split("\n").pop()!.split(/\s+/);
    disk = Number.parseFloat(cols[4] ?? "") || 0;
  } catch {
    // df missing: report 0.
  }

  let net = 0;
  for (const line of (await readOr("/proc/net/dev")).split("\n").slice(2)) {
    const [name = "", rest] = line.split(":");
    if (!rest || name.trim() === "lo") continue;
    const cols = rest.trim().split(/\s+/).map(Number);
    net += (cols[0] ?? 0) + (cols[8] ?? 0);
  }
  return { cpu: round(cpu), mem: round(mem), disk: round(disk), net };
}
