/**
 * The real kubectl against a stand-in, for tests: one-shot runs, long-lived ones (watch,
 * proxy), a test registration that needs docker and kubectl, and direct reads of the API for
 * waiting (a kubectl process per poll would be slow and is not what is under test).
 */
import { checkDocker } from "../docker.ts";
import { hostTools } from "../host_tools.ts";
import { testRequiring } from "../requirement.ts";
import { waitUntil } from "../wait.ts";
import type { KubeStandIn } from "./stand_in.ts";
import type { KubeObject } from "./store.ts";

const docker = await checkDocker();
const kubectlTool = hostTools(["kubectl"]);

/** Registers a test needing a docker engine (with the test image) and kubectl on the PATH. */
export function kubeTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const reasons = [docker.reason, kubectlTool.reason].filter((reason) => reason !== "");
  testRequiring(
    {
      available: reasons.length === 0,
      reason: reasons.join("; "),
      tests: "kubernetes stand-in tests",
      remedy: "run scripts/setup_docker.sh and install kubectl",
    },
    name,
    fn,
  );
}

/** How a kubectl run ended. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kubectl <args>` against the stand-in (stdin text optional). */
export async function kubectl(
  standIn: KubeStandIn,
  args: string[],
  stdin?: string,
): Promise<KubectlResult> {
  const child = new Deno.Command("kubectl", {
    args,
    env: standIn.env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs kubectl and returns its stdout; throws with stderr when it fails. */
export async function kubectlOk(
  standIn: KubeStandIn,
  args: string[],
  stdin?: string,
): Promise<string> {
  const result = await kubectl(standIn, args, stdin);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  }
  return result.stdout;
}

/** A pod read straight from the stand-in's API, or undefined when it does not exist. */
export async function readPod(standIn: KubeStandIn, name: string): Promise<KubeObject | undefined> {
  const response = await fetch(
    `${standIn.url}/api/v1/namespaces/${standIn.namespace}/pods/${name}`,
  );
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  return await response.json();
}

/** Waits until the pod meets `condition`; returns it. */
export async function waitForPod(
  standIn: KubeStandIn,
  name: string,
  condition: (pod: KubeObject) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<KubeObject> {
  let last: KubeObject | undefined;
  await waitUntil(
    async () => {
      last = await readPod(standIn, name);
      return last !== undefined && condition(last);
    },
    `pod "${name}": ${what}`,
    timeoutMs,
  );
  return last!;
}

/** A long-lived kubectl (watch, proxy): its stdout so far, and a stop. */
export class KubectlProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;
  readonly #stderr: Promise<string>;
  /** Everything printed on stdout so far. */
  stdout = "";

  /** Starts `kubectl <args>`. */
  constructor(standIn: KubeStandIn, args: string[]) {
    const child = new Deno.Command("kubectl", {
      args,
      env: standIn.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#stderr = new Response(child.stderr).text();
    this.#done = (async () => {
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.stdout += text;
      }
    })();
  }

  /** Waits until stdout matches `pattern`; returns the match. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    await waitUntil(() => pattern.test(this.stdout), `kubectl printing ${pattern}`, timeoutMs)
      .catch((error) => {
        throw new Error(`${error.message}; stdout: ${this.stdout}`);
      });
    return pattern.exec(this.stdout)!;
  }

  /** Stops kubectl; returns its stderr. */
  async stop(): Promise<string> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await this.#child.status;
    await this.#done;
    return await this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
