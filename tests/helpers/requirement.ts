/**
 * Tests that need something this machine may lack (a docker engine, a tool on the PATH): they run
 * when it is there; when it is not, they fail if the environment variable CI is "true" (CI makes
 * it present), else they are ignored and the reason is printed once per requirement.
 */

/** Something a group of tests needs, and whether this machine has it. */
export interface Requirement {
  /** True when the tests can run. */
  available: boolean;
  /** Why they cannot (empty when they can). */
  reason: string;
  /** What the tests are, in messages: `docker tests`. */
  tests: string;
  /** How to make it present, in messages: `run scripts/setup_docker.sh`. */
  remedy: string;
}

const printed = new Set<string>();

/** Registers a test that runs only where `requirement` is met (see the module comment). */
export function testRequiring(
  requirement: Requirement,
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const { available, reason, tests, remedy } = requirement;
  if (available) {
    Deno.test(name, fn);
  } else if (Deno.env.get("CI") === "true") {
    Deno.test(name, () => {
      throw new Error(`${tests} must run in CI: ${reason}; ${remedy}`);
    });
  } else {
    const message = `${tests} ignored: ${reason}; ${remedy} to enable them`;
    if (!printed.has(message)) {
      printed.add(message);
      console.error(message);
    }
    Deno.test({ name, ignore: true, fn });
  }
}
