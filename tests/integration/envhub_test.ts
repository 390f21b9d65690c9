/**
 * EnvHub against a real libsql file and a real server on port 0: CRUD, upsert, list filters, the
 * default row, bad input (422 naming the field, 404 for unknown environments, 500 with a detail),
 * EnvHubClient, and `rock envhub ...` as real processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createEnvHubApp } from "../../src/envhub/app.ts";
import { EnvStore, registerDefaultEnv } from "../../src/envhub/store.ts";
import type { EnvInfo } from "../../src/protocol/envhub.ts";
import { EnvHubClient } from "../../src/sdk/envhub_client.ts";
import { BadRequestRockError, InternalServerRockError } from "../../src/sdk/errors.ts";
import { MAIN, type ServedChild, spawnServer } from "../helpers/process.ts";

/** An EnvHub on 127.0.0.1:0 over a libsql file in a temp dir. */
interface EnvHubServer extends AsyncDisposable {
  url: string;
  store: EnvStore;
}

/** Options of startEnvHub. */
interface StartOptions {
  /** Keep the database in this directory, left in place (default: a fresh one, removed). */
  dir?: string;
  defaultImage?: string;
  now?: () => Date;
}

async function startEnvHub(options: StartOptions = {}): Promise<EnvHubServer> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "rock-envhub-test-" });
  const dbUrl = `file:${join(dir, "rock_envs.db")}`;
  const store = await EnvStore.open(dbUrl, { timeZone: "Asia/Shanghai", now: options.now });
  await registerDefaultEnv(store, options.defaultImage ?? "python:3.11");
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    createEnvHubApp({ store }).fetch,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    store,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      store.close();
      if (!options.dir) await Deno.remove(dir, { recursive: true });
    },
  };
}

interface Reply {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** POSTs `body` (an object, or raw text) and returns the status and parsed JSON reply. */
async function post(url: string, path: string, body: unknown): Promise<Reply> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const ISO_IN_SHANGHAI = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/;

Deno.test("EnvHub registers, gets, lists and deletes environments over HTTP", async () => {
  await using hub = await startEnvHub();
  const health = await fetch(`${hub.url}/health`);
  assert.deepEqual(await health.json(), { status: "ok" });

  const registered = await post(hub.url, "/env/register", {
    env_name: "swe-bench",
    image: "rock-test/swe:1",
    owner: "alice",
    description: "SWE-bench tasks",
    tags: ["swe", "python"],
    extra_spec: { cpus: 2, files: ["a", "b"] },
    unknown_key: "ignored",
  });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  const env: EnvInfo = registered.body;
  assert.deepEqual(Object.keys(env).sort(), [
    "create_at",
    "description",
    "env_name",
    "extra_spec",
    "image",
    "owner",
    "tags",
    "update_at",
  ]);
  assert.equal(env.env_name, "swe-bench");
  assert.equal(env.image, "rock-test/swe:1");
  assert.equal(env.owner, "alice");
  assert.equal(env.description, "SWE-bench tasks");
  assert.deepEqual(env.tags, ["swe", "python"]);
  assert.deepEqual(env.extra_spec, { cpus: 2, files: ["a", "b"] });
  assert.match(env.create_at, ISO_IN_SHANGHAI);
  assert.equal(env.update_at, env.create_at);

  // Defaults: owner "", description "", tags [], extra_spec null.
  const bare = await post(hub.url, "/env/register", { env_name: "bare", image: "alpine" });
  assert.equal(bare.status, 200);
  assert.equal(bare.body.owner, "");
  assert.equal(bare.body.description, "");
  assert.deepEqual(bare.body.tags, []);
  assert.equal(bare.body.extra_spec, null);

  assert.deepEqual(await post(hub.url, "/env/get", { env_name: "swe-bench" }), {
    status: 200,
    body: env,
  });
  const listed = await post(hub.url, "/env/list", {});
  assert.equal(listed.status, 200);
  assert.deepEqual(
    listed.body.envs.map((e: EnvInfo) => e.env_name),
    ["EnvhubDefaultDockerImage", "swe-bench", "bare"],
  );
  assert.deepEqual(listed.body.envs[1], env);

  assert.deepEqual(await post(hub.url, "/env/delete", { env_name: "swe-bench" }), {
    status: 200,
    body: true,
  });
  assert.equal((await post(hub.url, "/env/get", { env_name: "swe-bench" })).status, 404);
  assert.deepEqual(
    (await post(hub.url, "/env/list", {})).body.envs.map((e: EnvInfo) => e.env_name),
    ["EnvhubDefaultDockerImage", "bare"],
  );
});

Deno.test("EnvHub register upserts: everything is replaced but create_at, update_at moves", async () => {
  let clock = Date.parse("2026-01-21T11:38:00.250Z");
  await using hub = await startEnvHub({ now: () => new Date(clock) });
  const first = await post(hub.url, "/env/register", {
    env_name: "e",
    image: "one",
    owner: "alice",
    description: "first",
    tags: ["a"],
    extra_spec: { k: 1 },
  });
  assert.equal(first.body.create_at, "2026-01-21T19:38:00.250+08:00");
  clock += 61_500;
  const second = await post(hub.url, "/env/register", { env_name: "e", image: "two" });
  assert.equal(second.status, 200);
  assert.deepEqual(second.body, {
    env_name: "e",
    image: "two",
    owner: "",
    description: "",
    tags: [],
    extra_spec: null,
    create_at: "2026-01-21T19:38:00.250+08:00",
    update_at: "2026-01-21T19:39:01.750+08:00",
  });
  assert.deepEqual((await post(hub.url, "/env/get", { env_name: "e" })).body, second.body);
  const names = (await post(hub.url, "/env/list", {})).body.envs.map((e: EnvInfo) => e.env_name);
  assert.deepEqual(names, ["EnvhubDefaultDockerImage", "e"], "an upsert adds no second row");
});

Deno.test("EnvHub /env/list matches owner exactly and tags by any overlap", async () => {
  await using hub = await startEnvHub();
  for (
    const [name, owner, tags] of [
      ["a1", "alice", ["x"]],
      ["a2", "alice", ["y", "z"]],
      ["a3", "Alice", ["x"]],
      ["a4", "alice2", ["x", "y"]],
      ["b1", "bob", []],
    ] as const
  ) {
    const reply = await post(hub.url, "/env/register", {
      env_name: name,
      image: "img",
      owner,
      tags,
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  }
  const names = async (filter: unknown) => {
    const reply = await post(hub.url, "/env/list", filter);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body.envs.map((e: EnvInfo) => e.env_name);
  };
  const everything = ["EnvhubDefaultDockerImage", "a1", "a2", "a3", "a4", "b1"];
  assert.deepEqual(await names({ owner: "alice" }), ["a1", "a2"]);
  assert.deepEqual(await names({ owner: "ali" }), []);
  assert.deepEqual(await names({ tags: ["x"] }), ["a1", "a3", "a4"]);
  assert.deepEqual(await names({ tags: ["z", "y"] }), ["a2", "a4"]);
  assert.deepEqual(await names({ tags: ["system"] }), ["EnvhubDefaultDockerImage"]);
  assert.deepEqual(await names({ tags: ["nothing"] }), []);
  assert.deepEqual(await names({ owner: "alice", tags: ["x"] }), ["a1"]);
  assert.deepEqual(await names({ owner: "ENVHUB" }), ["EnvhubDefaultDockerImage"]);
  // No filter, empty filters and ROCK's SDK nulls all match everything; so does an empty body.
  assert.deepEqual(await names({}), everything);
  assert.deepEqual(await names({ owner: null, tags: null }), everything);
  assert.deepEqual(await names({ owner: "", tags: [] }), everything);
  assert.deepEqual(await names(""), everything);
  // A tag value that merely contains the asked one is no match.
  assert.deepEqual(await names({ tags: ['"x"'] }), []);
});

Deno.test("EnvHub upserts the default row at every start, keeping its create_at", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-envhub-test-" });
  try {
    let created: string;
    {
      await using hub = await startEnvHub({ dir, defaultImage: "python:3.11" });
      const row = await post(hub.url, "/env/get", { env_name: "EnvhubDefaultDockerImage" });
      assert.equal(row.status, 200);
      assert.equal(row.body.image, "python:3.11");
      assert.equal(row.body.owner, "ENVHUB");
      assert.equal(row.body.description, "Default docker environment provided by EnvHub");
      assert.deepEqual(row.body.tags, ["default", "system", "envhub"]);
      assert.deepEqual(row.body.extra_spec, {});
      created = row.body.create_at;
      await post(hub.url, "/env/register", { env_name: "kept", image: "img" });
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
    await using again = await startEnvHub({ dir, defaultImage: "python:3.12" });
    const row = await post(again.url, "/env/get", { env_name: "EnvhubDefaultDockerImage" });
    assert.equal(row.body.image, "python:3.12");
    assert.equal(row.body.create_at, created);
    assert.notEqual(row.body.update_at, created);
    assert.equal((await post(again.url, "/env/get", { env_name: "kept" })).status, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EnvHub answers bad input with 422 naming the field, 404 for unknown names, and keeps serving", async () => {
  await using hub = await startEnvHub();
  const cases: [string, unknown, RegExp][] = [
    ["/env/register", { image: "img" }, /field "env_name"/],
    ["/env/register", { env_name: "e" }, /field "image"/],
    ["/env/register", { env_name: 7, image: "img" }, /field "env_name".*expected string/],
    ["/env/register", { env_name: "", image: "img" }, /field "env_name": must not be empty/],
    ["/env/register", { env_name: "x".repeat(256), image: "img" }, /field "env_name".*255/],
    ["/env/register", { env_name: "e", image: "img", tags: "a,b" }, /field "tags".*array/],
    ["/env/register", { env_name: "e", image: "img", tags: ["a", 1] }, /field "tags\.1"/],
    ["/env/register", { env_name: "e", image: "img", owner: null }, /field "owner"/],
    ["/env/register", { env_name: "e", image: "img", extra_spec: [1] }, /field "extra_spec"/],
    ["/env/register", "{not json", /register request: body is not JSON/],
    ["/env/register", "[]", /register request: body must be a JSON object/],
    ["/env/get", {}, /Invalid get request: field "env_name"/],
    ["/env/get", { env_name: ["a"] }, /field "env_name".*expected string/],
    ["/env/get", '{"env_name": ', /get request: body is not JSON/],
    ["/env/delete", { name: "e" }, /Invalid delete request: field "env_name"/],
    ["/env/delete", "null", /body must be a JSON object/],
    ["/env/list", { owner: 3 }, /Invalid list request: field "owner"/],
    ["/env/list", { tags: "swe" }, /field "tags".*array/],
    ["/env/list", "tags=swe", /list request: body is not JSON/],
  ];
  for (const [path, body, detail] of cases) {
    const reply = await post(hub.url, path, body);
    const label = `${path} ${JSON.stringify(body)}`;
    assert.equal(reply.status, 422, `${label}: ${JSON.stringify(reply.body)}`);
    assert.deepEqual(Object.keys(reply.body), ["detail"], label);
    assert.match(reply.body.detail, detail, label);
  }
  assert.deepEqual(await post(hub.url, "/env/get", { env_name: "nope" }), {
    status: 404,
    body: { detail: 'Environment "nope" not found' },
  });
  assert.deepEqual(await post(hub.url, "/env/delete", { env_name: "nope" }), {
    status: 404,
    body: { detail: 'Environment "nope" not found or already deleted' },
  });
  const unknownRoute = await fetch(`${hub.url}/env/nothing`, { method: "POST" });
  assert.equal(unknownRoute.status, 404);
  assert.match((await unknownRoute.json()).detail, /Not Found/);

  // Nothing above changed the registry, and it still serves.
  const names = (await post(hub.url, "/env/list", {})).body.envs.map((e: EnvInfo) => e.env_name);
  assert.deepEqual(names, ["EnvhubDefaultDockerImage"]);
  assert.equal((await post(hub.url, "/env/register", { env_name: "e", image: "i" })).status, 200);
  assert.equal((await post(hub.url, "/env/get", { env_name: "e" })).status, 200);
  assert.deepEqual(await (await fetch(`${hub.url}/health`)).json(), { status: "ok" });
});

Deno.test("EnvHub answers 500 with a detail when its database fails", async () => {
  await using hub = await startEnvHub();
  hub.store.close();
  const reply = await post(hub.url, "/env/get", { env_name: "e" });
  assert.equal(reply.status, 500);
  assert.match(reply.body.detail, /^Cannot get environment "e": /);
  assert.deepEqual(await (await fetch(`${hub.url}/health`)).json(), { status: "ok" });
});

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("EnvHubClient registers, gets, lists, deletes and maps errors to SDK error classes", async () => {
  await using hub = await startEnvHub();
  const client = new EnvHubClient(`${hub.url}/`);
  assert.equal(client.baseUrl, hub.url);
  assert.deepEqual(await client.health(), { status: "ok" });

  const env = await client.register({
    envName: "sdk",
    image: "img:1",
    owner: "carol",
    tags: ["t1", "t2"],
    extraSpec: { gpu: false },
  });
  assert.equal(env.env_name, "sdk");
  assert.deepEqual(env.extra_spec, { gpu: false });
  assert.deepEqual(await client.get("sdk"), env);
  assert.deepEqual((await client.list({ owner: "carol" })).map((e) => e.env_name), ["sdk"]);
  assert.deepEqual((await client.list({ tags: ["t2", "zzz"] })).map((e) => e.env_name), ["sdk"]);
  assert.equal((await client.list()).length, 2);
  assert.equal(await client.delete("sdk"), true);

  await assert.rejects(client.get("sdk"), (error: unknown) => {
    assert.ok(error instanceof BadRequestRockError, String(error));
    assert.equal(error.status, 404);
    assert.equal(error.code, 4000);
    assert.equal(error.message, 'Environment "sdk" not found');
    return true;
  });
  await assert.rejects(client.delete("sdk"), BadRequestRockError);
  await assert.rejects(client.register({ envName: "", image: "img" }), (error: unknown) => {
    assert.ok(error instanceof BadRequestRockError);
    assert.equal(error.status, 422);
    assert.match(error.message, /field "env_name"/);
    return true;
  });

  const offline = new EnvHubClient(`http://127.0.0.1:${closedPort()}`);
  await assert.rejects(offline.health(), (error: unknown) => {
    assert.ok(error instanceof InternalServerRockError, String(error));
    assert.match(error.message, /^Cannot reach the EnvHub at http:\/\/127\.0\.0\.1:\d+: /);
    return true;
  });

  // An injected fetch (no network) sees ROCK's own EnvHub replies: FastAPI's 422 detail list.
  const fastApi = new EnvHubClient("http://envhub.invalid", {
    fetch: () =>
      Promise.resolve(Response.json({
        detail: [{ loc: ["body", "env_name"], msg: "Field required", type: "missing" }],
      }, { status: 422 })),
  });
  await assert.rejects(fastApi.get("x"), /field "env_name": Field required/);
  const broken = new EnvHubClient("http://envhub.invalid", {
    fetch: () => Promise.resolve(new Response("<html>bad gateway</html>", { status: 502 })),
  });
  await assert.rejects(broken.list(), (error: unknown) => {
    assert.ok(error instanceof InternalServerRockError);
    assert.match(error.message, /HTTP 502 and no JSON/);
    return true;
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rock envhub <args>` through the test entry. */
async function rockEnvHub(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "envhub", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { ROCK_ENVHUB_BASE_URL: "", ...env },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Asserts exit code `code` and exactly one `error: ...` line, no stack trace. */
function assertFailure(result: Run, code: number, pattern: RegExp, label: string): void {
  assert.equal(result.code, code, `${label}: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `${label}: ${result.stderr}`);
  assert.match(lines[0] ?? "", /^error: /, label);
  assert.match(lines[0] ?? "", pattern, label);
  assert.doesNotMatch(result.stderr, /^\s+at /m, label);
}

/** Spawns `rock envhub start` on a free port and waits for its listening line. */
function spawnEnvHub(args: string[], env: Record<string, string>): Promise<ServedChild> {
  return spawnServer(["run", "--allow-all", MAIN, "envhub", "start", ...args], { env });
}

Deno.test("rock envhub start serves ROCK's sqlite:/// path; register, get, ls and rm talk to it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-envhub-cli-" });
  const dbPath = join(dir, "nested", "rock_envs.db");
  const { url, child, stderr } = await spawnEnvHub(
    ["--host", "127.0.0.1", "--port", "0", "--db", `sqlite:///${dbPath}`],
    { ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE: "rock-test/default:1", ROCK_TIME_ZONE: "UTC" },
  );
  try {
    assert.ok((await Deno.stat(dbPath)).isFile, "the database is the --db file");
    const ok = async (...args: string[]) => {
      const result = await rockEnvHub(["--base-url", url, ...args]);
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
      return result.stdout;
    };

    const registered = await ok(
      "register",
      "--name",
      "cli-env",
      "--image",
      "img:2",
      "--owner",
      "dave",
      "--description",
      "made by the CLI",
      "--tag",
      "t1",
      "--tag",
      "t2",
      "--extra-spec",
      '{"memory": "4g"}',
    );
    assert.equal(registered, "cli-env\n");
    const env: EnvInfo = JSON.parse(await ok("get", "cli-env", "--json"));
    assert.equal(env.image, "img:2");
    assert.equal(env.owner, "dave");
    assert.equal(env.description, "made by the CLI");
    assert.deepEqual(env.tags, ["t1", "t2"]);
    assert.deepEqual(env.extra_spec, { memory: "4g" });
    assert.match(env.create_at, /\+00:00$/, "ROCK_TIME_ZONE of the server");
    assert.match(await ok("get", "cli-env"), /^tags\s+t1, t2$/m);

    const defaultRow: EnvInfo = JSON.parse(await ok("get", "EnvhubDefaultDockerImage", "--json"));
    assert.equal(defaultRow.image, "rock-test/default:1");

    // The global option also works after the subcommand, and $ROCK_ENVHUB_BASE_URL without it.
    const byTag = JSON.parse(await ok("ls", "--tag", "t2", "--tag", "nope", "--json"));
    assert.deepEqual(byTag.map((e: EnvInfo) => e.env_name), ["cli-env"]);
    const fromEnv = await rockEnvHub(["ls", "--owner", "dave", "--json"], {
      ROCK_ENVHUB_BASE_URL: url,
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.deepEqual(JSON.parse(fromEnv.stdout).map((e: EnvInfo) => e.env_name), ["cli-env"]);
    const table = (await ok("ls")).trim().split("\n");
    assert.match(table[0] ?? "", /^NAME\s+IMAGE\s+OWNER\s+TAGS\s+UPDATED$/);
    assert.match(table[1] ?? "", /^EnvhubDefaultDockerImage\s+rock-test\/default:1\s+ENVHUB\s+/);
    assert.match(table[2] ?? "", /^cli-env\s+img:2\s+dave\s+t1,t2\s+\d{4}-/);
    assert.deepEqual(JSON.parse(await ok("ls", "--owner", "nobody", "--json")), []);

    assert.equal(await ok("rm", "cli-env"), "cli-env\n");
    assertFailure(
      await rockEnvHub(["--base-url", url, "get", "cli-env"]),
      1,
      /Environment "cli-env" not found/,
      "get after rm",
    );
    assertFailure(
      await rockEnvHub(["--base-url", url, "rm", "cli-env"]),
      1,
      /not found or already deleted/,
      "rm twice",
    );
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, await stderr);
  }
});

Deno.test("rock envhub exits 1 when EnvHub is unreachable and 2 for usage errors, one line each", async () => {
  const offline = `http://127.0.0.1:${closedPort()}`;
  assertFailure(
    await rockEnvHub(["--base-url", offline, "ls"]),
    1,
    /Cannot reach the EnvHub at/,
    "unreachable",
  );
  for (
    const [args, pattern] of [
      [["register", "--name", "x"], /required option '--image <image>'/],
      [["register", "--name", "x", "--image", "i", "--extra-spec", "[1]"], /JSON object/],
      [["register", "--name", "x", "--image", "i", "--extra-spec", "{oops"], /JSON object/],
      [["get"], /missing required argument 'name'/],
      [["--base-url", "ftp://host", "ls"], /Invalid EnvHub URL "ftp:\/\/host" from --base-url/],
      [["start", "--port", "http"], /expected a port number/],
      [["start", "--db", "postgresql://u@h/db"], /Invalid EnvHub database URL/],
      [["nope"], /unknown command 'nope'/],
    ] as const
  ) {
    assertFailure(await rockEnvHub([...args]), 2, pattern, args.join(" "));
  }
  const help = await rockEnvHub(["start", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--host <host>.*\(default: "0\.0\.0\.0"\)/);
  assert.match(help.stdout, /--port <port>.*\(default: 8081\)/);
});
