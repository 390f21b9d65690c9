/** Wire-level behaviour of the rocklet: status codes and JSON shapes as ROCK's clients see them. */
import assert from "node:assert/strict";
import { startRockletServer } from "../helpers/rocklet_server.ts";

async function post(url: string, body: string, contentType = "application/json") {
  const response = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": contentType },
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("rocklet answers GET / and /is_alive as ROCK does", async () => {
  await using server = startRockletServer();
  assert.deepEqual(await (await fetch(`${server.url}/`)).json(), { message: "hello world" });
  assert.deepEqual(await (await fetch(`${server.url}/is_alive`)).json(), {
    is_alive: true,
    message: "",
  });
});

Deno.test("rocklet replies to 20 malformed requests with 4xx and keeps serving", async () => {
  await using server = startRockletServer();
  const cases: Array<[string, string, RegExp]> = [
    ["/run_in_session", "{not json", /Invalid JSON body/],
    ["/run_in_session", "[1,2]", /expected an object/],
    ["/run_in_session", "null", /expected an object/],
    ["/run_in_session", "{}", /field "command"/],
    ["/run_in_session", '{"command": 5}', /field "command"/],
    ["/run_in_session", '{"command": "ls", "check": "sometimes"}', /field "check"/],
    ["/run_in_session", '{"command": "ls", "timeout": -1}', /field "timeout"/],
    ["/run_in_session", '{"command": "ls", "timeout": "soon"}', /field "timeout"/],
    ["/run_in_session", '{"command": "a\\u0000b"}', /NUL/],
    ["/create_session", '{"session": 7}', /field "session"/],
    ["/create_session", '{"env": {"A": 1}}', /field "env.A"/],
    ["/create_session", '{"startup_source": "file"}', /field "startup_source"/],
    ["/create_session", '{"session": ""}', /field "session"/],
    ["/close_session", '{"session": false}', /field "session"/],
    ["/execute", '{"command": 3}', /field "command"/],
    ["/execute", '{"command": "ls", "cwd": 3}', /field "cwd"/],
    ["/execute", '{"command": "ls", "env": "A=1"}', /field "env"/],
    ["/read_file", '{"encoding": "utf-8"}', /field "path"/],
    ["/read_file", '{"path": "/etc/hostname", "errors": "explode"}', /field "errors"/],
    ["/write_file", '{"path": "/tmp/x"}', /field "content"/],
    ["/write_file", '{"content": "x", "path": ["/tmp/x"]}', /field "path"/],
  ];
  for (const [path, body, pattern] of cases) {
    const { status, json } = await post(`${server.url}${path}`, body);
    assert.equal(status, 422, `${path} ${body}`);
    assert.match(json.detail, pattern, `${path} ${body}`);
  }
  assert.equal((await fetch(`${server.url}/is_alive`)).status, 200);
});

Deno.test("rocklet reports runtime failures as HTTP 511 rockletexception with ROCK's class paths", async () => {
  await using server = startRockletServer();
  const unknown = await post(
    `${server.url}/run_in_session`,
    '{"command": "true", "session": "nope"}',
  );
  assert.equal(unknown.status, 511);
  assert.equal(
    unknown.json.rockletexception.class_path,
    "rock.rocklet.exceptions.SessionDoesNotExistError",
  );
  assert.match(unknown.json.rockletexception.message, /"nope"/);
  assert.equal(typeof unknown.json.rockletexception.traceback, "string");
  const missing = await post(`${server.url}/read_file`, '{"path": "/no/such/file"}');
  assert.equal(missing.status, 511);
  assert.equal(missing.json.rockletexception.class_path, "builtins.FileNotFoundError");
  await post(`${server.url}/create_session`, '{"session": "s"}');
  const failed = await post(
    `${server.url}/run_in_session`,
    '{"command": "(exit 3)", "session": "s"}',
  );
  assert.equal(failed.status, 511);
  assert.equal(
    failed.json.rockletexception.class_path,
    "rock.rocklet.exceptions.NonZeroExitCodeError",
  );
  assert.equal(failed.json.rockletexception.extra_info.exit_code, 3);
  const ok = await post(
    `${server.url}/run_in_session`,
    '{"command": "echo hi", "session": "s", "unknown_field": 1}',
  );
  assert.deepEqual(ok.json, {
    session_type: "bash",
    output: "hi",
    exit_code: 0,
    failure_reason: "",
    expect_string: "",
  });
});

Deno.test("rocklet rejects bad uploads and downloads with clear errors", async () => {
  await using server = startRockletServer();
  const noBoundary = await post(`${server.url}/upload`, "x", "multipart/form-data");
  assert.equal(noBoundary.status, 422);
  assert.match(noBoundary.json.detail, /boundary/);
  const form = new FormData();
  form.set("target_path", "/tmp/never-written");
  const noFile = await fetch(`${server.url}/upload`, { method: "POST", body: form });
  assert.equal(noFile.status, 422);
  assert.match((await noFile.json()).detail, /"file"/);
  const truncated = await post(
    `${server.url}/upload`,
    '--b\r\ncontent-disposition: form-data; name="target_path"\r\n\r\n/tmp/x',
    "multipart/form-data; boundary=b",
  );
  assert.equal(truncated.status, 422);
  const noPath = await fetch(`${server.url}/download`);
  assert.equal(noPath.status, 422);
  await noPath.body?.cancel();
  const unknownRoute = await fetch(`${server.url}/no/such/route`);
  assert.equal(unknownRoute.status, 404);
  await unknownRoute.body?.cancel();
});

Deno.test("rocklet accepts an upload whose file part comes before target_path", async () => {
  await using server = startRockletServer();
  const dir = await Deno.makeTempDir();
  try {
    const boundary = "XyZ";
    const body =
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.txt"\r\n\r\n` +
      `file first\r\n--${boundary}\r\ncontent-disposition: form-data; name="target_path"\r\n\r\n` +
      `${dir}/a.txt\r\n--${boundary}--\r\n`;
    const { status, json } = await post(
      `${server.url}/upload`,
      body,
      `multipart/form-data; boundary=${boundary}`,
    );
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.success, true);
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "file first");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
