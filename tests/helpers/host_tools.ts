/**
 * Tests that need a tool on this machine, such as the local backend's agent examples, whose
 * sandbox is this machine: `hostToolTest(["python3"], name, fn)` runs where every tool is on the
 * PATH, fails in CI where one is missing, and is ignored elsewhere (see requirement.ts).
 */
import { join } from "node:path";
import { type Requirement, testRequiring } from "./requirement.ts";

/** True when an executable file `name` is in a directory of the PATH. */
function onPath(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const info = Deno.statSync(join(dir, name));
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** Whether every tool in `tools` is on the PATH. */
export function hostTools(tools: string[]): Requirement {
  const missing = tools.filter((tool) => !onPath(tool));
  return {
    available: missing.length === 0,
    reason: missing.length === 0 ? "" : `${missing.join(", ")} not on the PATH`,
    tests: `tests needing ${tools.join(", ")} on this machine`,
    remedy: `install ${missing.join(", ")}`,
  };
}

/** Registers a test that needs `tools` on this machine's PATH. */
export function hostToolTest(
  tools: string[],
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  testRequiring(hostTools(tools), name, fn);
}
