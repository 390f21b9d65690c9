/** Trajectory writing and redaction; configuration defaults, file, flags and environment. */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/common/errors.ts";
import { silentLogger } from "../../src/common/log.ts";
import {
  DEFAULT_MODEL_SERVICE_CONFIG,
  loadModelServiceConfig,
  readModelServiceSettings,
} from "../../src/model_service/config.ts";
import { REDACTED, redactSecrets, TrajectoryWriter } from "../../src/model_service/traj.ts";

Deno.test("redactSecrets() hides credentials but keeps token counts and logprob tokens", () => {
  const redacted = redactSecrets({
    model: "m",
    api_key: "sk-live-123",
    max_tokens: 100,
    extra_headers: { Authorization: "Bearer sk-abc", "X-Api-Key": "k" },
    messages: [{ role: "user", content: "use header Bearer abcdefghijkl please" }],
    usage: { prompt_tokens: 1, completion_tokens: 2 },
    logprobs: { content: [{ token: "Hi", logprob: -0.1 }] },
    access_token: "t",
  });
  assert.deepEqual(redacted, {
    model: "m",
    api_key: REDACTED,
    max_tokens: 100,
    extra_headers: { Authorization: REDACTED, "X-Api-Key": REDACTED },
    messages: [{ role: "user", content: `use header Bearer ${REDACTED} please` }],
    usage: { prompt_tokens: 1, completion_tokens: 2 },
    logprobs: { content: [{ token: "Hi", logprob: -0.1 }] },
    access_token: REDACTED,
  });
});

Deno.test("TrajectoryWriter keeps only the latest call by default and every call in append mode", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-traj-" });
  try {
    const latest = new TrajectoryWriter(`${dir}/a/LLMTraj.jsonl`, { append: false });
    const all = new TrajectoryWriter(`${dir}/b/LLMTraj.jsonl`, { append: true });
    for (const n of [1, 2, 3]) {
      latest.record({ n }, { ok: n });
      all.record({ n, api_key: "secret" }, { ok: n });
    }
    latest.close();
    all.close();
    assert.equal(
      await Deno.readTextFile(`${dir}/a/LLMTraj.jsonl`),
      '{"request":{"n":3},"response":{"ok":3}}\n',
    );
    const lines = (await Deno.readTextFile(`${dir}/b/LLMTraj.jsonl`)).trim().split("\n");
    assert.equal(lines.length, 3);
    assert.ok(!lines.join("").includes("secret"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TrajectoryWriter.begin(): a request prepared ahead is written with its response; what cannot be serialized is logged and skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-traj-" });
  const errors: string[] = [];
  const logger = { ...silentLogger, error: (message: string) => void errors.push(message) };
  const writer = new TrajectoryWriter(`${dir}/LLMTraj.jsonl`, { append: true, logger });
  try {
    const message = { role: "user", content: "hi" };
    const request = { messages: [message], api_key: "sk-1" };
    const record = writer.begin(request);
    record.prepare();
    message.content = "changed after prepare()";
    record.write({ choices: [], token: "t" });
    const bigint = writer.begin({ n: 1n });
    bigint.prepare();
    bigint.write({ ok: true });
    writer.begin({ n: 2 }).write({ n: 2n });
    writer.record({ n: 3 }, undefined);
    assert.deepEqual(errors, [
      "Cannot serialize a trajectory record",
      "Cannot serialize a trajectory record",
    ]);
    assert.equal(
      await Deno.readTextFile(`${dir}/LLMTraj.jsonl`),
      '{"request":{"messages":[{"role":"user","content":"hi"}],"api_key":"[REDACTED]"},' +
        '"response":{"choices":[],"token":"t"}}\n' +
        '{"request":{"n":3},"response":null}\n',
    );
  } finally {
    writer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModelServiceConfig() applies ROCK's defaults, then the file, then flags", async () => {
  assert.deepEqual(await loadModelServiceConfig({}), DEFAULT_MODEL_SERVICE_CONFIG);
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-config-" });
  try {
    await Deno.writeTextFile(
      `${dir}/c.yml`,
      [
        "host: 127.0.0.1",
        "port: 9000",
        "proxy_rules:",
        "  qwen: http://127.0.0.1:1/v1",
        "  default: http://127.0.0.1:2/v1",
        "retryable_status_codes: [429, 502]",
        "request_timeout: 0.5",
        "retry_delay: 0.01",
      ].join("\n"),
    );
    const config = await loadModelServiceConfig({
      configFile: `${dir}/c.yml`,
      port: 0,
      retryableStatusCodes: [503],
    });
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 0, "flags win");
    assert.deepEqual(config.retryableStatusCodes, [503]);
    assert.equal(config.requestTimeout, 0.5);
    assert.equal(config.retryDelay, 0.01);
    assert.equal(config.retryMaxAttempts, 6);
    assert.deepEqual(config.proxyRules, {
      qwen: "http://127.0.0.1:1/v1",
      default: "http://127.0.0.1:2/v1",
    });

    await Deno.writeTextFile(`${dir}/typo.yml`, "proxy_rule:\n  a: http://x/v1\n");
    await assert.rejects(
      loadModelServiceConfig({ configFile: `${dir}/typo.yml` }),
      (e) => e instanceof ConfigError && /typo\.yml": key "proxy_rule"/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/url.yml`, "proxy_base_url: ftp://x\n");
    await assert.rejects(
      loadModelServiceConfig({ configFile: `${dir}/url.yml` }),
      /key "proxy_base_url": must be an http or https URL/,
    );
    await assert.rejects(loadModelServiceConfig({ configFile: `${dir}/none.yml` }), /Cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readModelServiceSettings() reads ROCK_MODEL_SERVICE_* with ROCK's defaults", () => {
  const defaults = readModelServiceSettings({ HOME: "/home/u" });
  assert.deepEqual(defaults, {
    dataDir: "/data/logs",
    trajAppend: false,
    stateDir: "/home/u/.rock/model-service",
    logFile: "/home/u/.rock/model-service/model_service.log",
  });
  const set = readModelServiceSettings({
    HOME: "/home/u",
    ROCK_MODEL_SERVICE_DATA_DIR: "~/data",
    ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: "True",
    ROCK_MODEL_SERVICE_STATE_DIR: "/run/ms",
    ROCK_LOGGING_PATH: "/var/log/rock",
  });
  assert.deepEqual(set, {
    dataDir: "/home/u/data",
    trajAppend: true,
    stateDir: "/run/ms",
    logFile: "/var/log/rock/model_service.log",
  });
  assert.throws(
    () => readModelServiceSettings({ ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: "maybe" }),
    ConfigError,
  );
});
