/**
 * The READMEs run as pasted. Every ```sh block of README.md and examples/<name>/README.md runs with
 * bash in the checkout against the admin that the README's start command starts (`deno task
 * start`, backend auto: docker here). A block is run unless the line before it is
 * `<!-- not run: the reason -->`; only the test-suite command, the docker setup script and
 * one-line foreground server starts may be skipped. The quickstart's ts block runs with
 * `deno run -A`; any other ts or yaml block must be a whole file of examples/.
 *
 * Blocks are pasted into interactive shells, so nothing stops at a failing line: each runs with
 * an ERR trap, and every line that fails must say so in its comment with its code (`# exit 7`),
 * and must fail with it. An admin envelope with `"status":"Failed"` counts as a failure too.
 *
 * Substitutions applied to a block's text before it runs (so runs never touch this machine's
 * admin, ports or files):
 *
 * | README text                                  | becomes                                      |
 * | -------------------------------------------- | -------------------------------------------- |
 * | `npx -y deno@2 `                             | `deno ` (the Deno running the tests; npx     |
 * |                                              | would fetch Deno from the npm registry)      |
 * | port 8080 (`host:8080`, `--port 8080`)       | the port of the admin the test started       |
 * | any other fixed port (`host:N`, `--port N`)  | a free port, the same one for every block    |
 * | `/tmp/rock-...` (host paths)                 | `<temp dir>/rock-...`                        |
 * | sandbox id `demo` (`"sandbox_id": "demo"`,   | `rock-test-readme-<random>`, one per block   |
 * | `sandbox_id=demo`)                           | (container names are global on the engine)   |
 *
 * Blocks run with HOME set to a temp dir (so `~/.rock` is the test's), DENO_DIR set to the real
 * Deno cache, ROCK_BASE_URL set to the admin, and no other ROCK_* variable.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SandboxStore } from "../../src/admin/store.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { dockerTest, testSandboxId } from "../helpers/docker.ts";
import { runRock, type ServedChild, spawnServer } from "../helpers/process.ts";
import {
  isQuickstart,
  QUICKSTART_OUTPUT,
  readmeSnippets,
  REPO_ROOT,
  runTsSnippet,
  type Snippet,
} from "../helpers/readme.ts";

/** The ERR trap every block runs under (line 1 of its script, so block line = $LINENO - 1). */
const TRAP = `trap 'echo "__ERR__ $LINENO $?" >&2' ERR`;

/** Hang guard per block: about 10x the slowest block on a busy 2-core machine. */
const BLOCK_TIMEOUT_MS = 300_000;

/** The README's start command, run by the test itself (with --port and --data-dir). */
const START_COMMAND = "npx -y deno@2 task start";

/** What blocks may be skipped: the whole test suite, the docker setup, a foreground server. */
const SKIPPABLE = [
  /^(npx -y deno@2|deno) task (test|ok)\b/,
  /^(sudo )?bash scripts\/setup_docker\.sh\b/,
  /^(npx -y deno@2|deno) task (start|rock (admin start|rocklet|envhub start|model-service start))\b[^&]*$/,
];

/** Outputs the READMEs' comments promise, by the block that prints them. */
const PROMISES: Array<{ block: RegExp; output: RegExp[] }> = [
  { block: /default_image/, output: [/"image":"rock-test\/debian:bookworm"/] },
  { block: /\$API\/run_in_session/, output: [/Python 3\.\d+/, /"state":"running"/] },
  { block: /sandbox exec/, output: [/^exit 7$/m, /^\/tmp 1$/m, /^\/tmp$/m, /^exit 3$/m] },
  {
    block: /anti-call-llm/,
    output: [/"content":\s*"hi"/, /"content":\s*"hello"/, /^SESSION_END$/m],
  },
  { block: /model-service start --type proxy/, output: [/"status":"healthy"/] },
  { block: /agent run/, output: [/^Hello from an agent in a sandbox$/m] },
  { block: /envhub register/, output: [/^swe$/m] },
  { block: /scheduler\/tasks/, output: [/"status":"success"/, /"running":\d+/] },
  { block: /rock rocklet/, output: [/"output":"\/tmp"/, /CommandTimeoutError/] },
];

/** The texts of the .ts and .yml files under examples/ (a README shows some of them whole). */
async function exampleFiles(dir = join(REPO_ROOT, "examples")): Promise<Set<string>> {
  const texts = new Set<string>();
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const found = entry.isDirectory
      ? await exampleFiles(path)
      : /\.(ts|ya?ml)$/.test(entry.name)
      ? [await Deno.readTextFile(path)]
      : [];
    for (const text of found) texts.add(text);
  }
  return texts;
}

/** A port nothing listens on right now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** The block text as the test runs it (see the table above). */
function substitute(text: string, ports: Map<string, number>, tmp: string): string {
  const id = testSandboxId("readme");
  return text
    .replaceAll("npx -y deno@2 ", "deno ")
    .replace(/((?:localhost|127\.0\.0\.1):|--port )(\d{4,5})\b/g, (_, before, port) => {
      if (!ports.has(port)) ports.set(port, freePort());
      return `${before}${ports.get(port)}`;
    })
    .replaceAll("/tmp/rock-", `${tmp}/rock-`)
    .replace(/(sandbox_id(?:": "|=))demo\b/g, `$1${id}`);
}

/** The comment of a shell line (after a `#` outside quotes that starts a word), or "". */
function shellComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "\\") {
      i++;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1] ?? ""))) {
      return line.slice(i + 1);
    }
  }
  return "";
}

/** The exit code the command starting at `index` promises in its comments (`exit N`), if any. */
function promisedExit(lines: string[], index: number): number | undefined {
  for (const line of lines.slice(index)) {
    const promise = /\bexit ([1-9]\d*)\b/.exec(shellComment(line));
    if (promise) return Number(promise[1]);
    if (!line.endsWith("\\")) return undefined;
  }
  return undefined;
}

/** What one block did. */
interface BlockRun {
  stdout: string;
  stderr: string;
  /** Lines that failed (0-based in the block) and their exit codes, from the ERR trap. */
  failures: Array<{ index: number; code: number }>;
  /** Something the block started was still running in its process group when bash ended. */
  leftover: boolean;
  timedOut: boolean;
}

/** Runs a block with bash in a process group of its own (so whatever it leaves can be ended). */
async function runBlock(script: string, env: Record<string, string>): Promise<BlockRun> {
  const child = new Deno.Command("setsid", {
    args: ["bash", script],
    cwd: REPO_ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  let timedOut = false;
  const guard = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, BLOCK_TIMEOUT_MS);
  await child.status;
  clearTimeout(guard);
  const leftover = killGroup(child.pid);
  const [out, err] = await Promise.all([stdout, stderr]);
  const failures = [...err.matchAll(/__ERR__ (\d+) (\d+)$/gm)].map((m) => ({
    index: Number(m[1]) - 2,
    code: Number(m[2]),
  }));
  return { stdout: out, stderr: err, failures, leftover, timedOut };
}

/** SIGKILLs process group `pgid`; true when it still had members. */
function killGroup(pgid: number): boolean {
  try {
    Deno.kill(-pgid, "SIGKILL");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Why the run of `snippet` is wrong ([] when it did what the README says). */
function judge(snippet: Snippet, run: BlockRun): string[] {
  const where = (index: number) => `${snippet.file}:${snippet.line + index}`;
  const lines = snippet.text.split("\n");
  const problems: string[] = [];
  if (run.timedOut) problems.push(`did not end within ${BLOCK_TIMEOUT_MS / 1000} s`);
  if (run.leftover) problems.push("left a process running in its shell's process group");
  for (const { index, code } of run.failures) {
    const promised = promisedExit(lines, index);
    if (promised !== code) {
      problems.push(
        `${where(index)} exited ${code}${
          promised === undefined ? "" : ` (its comment says exit ${promised})`
        }: ${lines[index]}`,
      );
    }
  }
  lines.forEach((_, index) => {
    const promised = promisedExit(lines, index);
    const isStart = index === 0 || !lines[index - 1]?.endsWith("\\");
    if (promised !== undefined && isStart && !run.failures.some((f) => f.index === index)) {
      problems.push(`${where(index)} should exit ${promised} but did not fail: ${lines[index]}`);
    }
  });
  if (/"status":\s*"Failed"/.test(run.stdout)) problems.push("an admin call answered Failed");
  for (const promise of PROMISES.filter((p) => p.block.test(snippet.text))) {
    for (const output of promise.output) {
      if (!output.test(run.stdout)) problems.push(`its output does not match ${output}`);
    }
  }
  return problems;
}

/** The environment blocks (and the admin) run with. */
async function blockEnv(home: string): Promise<Record<string, string>> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const { denoDir } = JSON.parse(new TextDecoder().decode(info.stdout));
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([key]) => !key.startsWith("ROCK_")),
  );
  return { ...env, HOME: home, DENO_DIR: denoDir, NO_COLOR: "1" };
}

/** Whether a block is one of the kinds that must not run here (see SKIPPABLE). */
function mustSkip(snippet: Snippet): boolean {
  const lines = snippet.text.trim().split("\n");
  const [only] = lines;
  return lines.length === 1 && only !== undefined && SKIPPABLE.some((kind) => kind.test(only));
}

Deno.test("the README skips only the test suite, docker setup and foreground servers", async () => {
  const snippets = await readmeSnippets();
  for (const snippet of snippets.filter((s) => s.lang === "sh")) {
    const where = `${snippet.file}:${snippet.line}`;
    if (snippet.skip !== undefined) {
      assert.notEqual(snippet.skip, "", `${where}: a skipped block says why`);
    }
    assert.equal(
      snippet.skip !== undefined,
      mustSkip(snippet),
      `${where}: the test suite, the docker setup and one-line foreground servers are skipped ` +
        `(<!-- not run: reason --> before the block), and nothing else is`,
    );
  }
  assert.ok(
    snippets.some((s) => s.text.trim() === START_COMMAND),
    `README.md shows the start command "${START_COMMAND}"`,
  );
});

/**
 * Stops what the blocks may have left (the model service, admins started with --daemon) and
 * removes the containers of every admin that ran under `tmp`; returns what was left.
 */
async function cleanUp(tmp: string, home: string, env: Record<string, string>): Promise<string[]> {
  const docker = new DockerCli();
  const left: string[] = [];
  await runRock(["model-service", "stop"], { env, clearEnv: true });
  const candidates = [join(home, ".rock")];
  for await (const entry of Deno.readDir(tmp)) candidates.push(join(tmp, entry.name));
  for (const dataDir of candidates) {
    const db = join(dataDir, "rock.db");
    if (!(await Deno.stat(db).then(() => true, () => false))) continue;
    await runRock(["admin", "stop", "--data-dir", dataDir], { env, clearEnv: true });
    const store = await SandboxStore.open(`file:${db}`);
    const deployment = await store.deploymentId().finally(() => store.close());
    const containers = await docker.psByLabel(`rock.deployment=${deployment}`);
    await docker.remove(containers);
    if (containers.length > 0) left.push(`${containers.length} container(s) of ${dataDir}`);
  }
  return left;
}

dockerTest(
  "every README block runs as pasted against the admin `deno task start` starts",
  async (t) => {
    const snippets = await readmeSnippets();
    const examples = await exampleFiles();
    const tmp = await Deno.makeTempDir({ prefix: "rock-readme-" });
    const home = join(tmp, "home");
    await Deno.mkdir(home);
    const env = await blockEnv(home);
    const port = freePort();
    const ports = new Map([["8080", port]]);
    let admin: ServedChild | undefined;
    let left: string[] = [];
    try {
      admin = await spawnServer(
        ["task", "start", "--port", String(port), "--data-dir", join(tmp, "admin")],
        { cwd: REPO_ROOT, env, clearEnv: true },
      );
      const blockEnvironment = { ...env, ROCK_BASE_URL: admin.url };
      let n = 0;
      for (const snippet of snippets.filter((s) => s.skip === undefined)) {
        const name = `${snippet.file}:${snippet.line} (${snippet.heading.replace(/^#+ /, "")})`;
        await t.step(name, async () => {
          if (isQuickstart(snippet)) {
            assert.equal(await runTsSnippet(snippet, blockEnvironment), QUICKSTART_OUTPUT);
            return;
          }
          if (snippet.lang === "ts" || snippet.lang === "yaml") {
            assert.ok(examples.has(snippet.text), `${name}: the text of a file under examples/`);
            return;
          }
          assert.equal(snippet.lang, "sh", `${name}: blocks are sh, ts or yaml`);
          assert.ok(!mustSkip(snippet), `${name}: must be marked <!-- not run: reason -->`);
          const script = join(tmp, `block-${++n}.sh`);
          await Deno.writeTextFile(script, `${TRAP}\n${substitute(snippet.text, ports, tmp)}`);
          const run = await runBlock(script, blockEnvironment);
          assert.deepEqual(judge(snippet, run), [], `${name}:\n${run.stdout}\n${run.stderr}`);
        });
      }
      for (const promise of PROMISES) {
        assert.ok(
          snippets.some((s) => s.skip === undefined && promise.block.test(s.text)),
          `a README block matches ${promise.block}`,
        );
      }
      const running = await fetch(`${admin.url}/apis/envs/sandbox/v1/sandboxes?state=running`);
      assert.equal((await running.json()).result.total, 0, "the README stops what it starts");
    } finally {
      if (admin) {
        admin.child.kill("SIGTERM");
        await admin.child.status;
        await admin.stderr;
      }
      // Sandboxes outlive their admins: what the blocks left is removed here, and reported.
      left = await cleanUp(tmp, home, env);
      await Deno.remove(tmp, { recursive: true });
    }
    assert.deepEqual(left, [], "every sandbox the blocks started was stopped");
  },
);
