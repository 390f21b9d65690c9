/**
 * A call's trajectory record is in LLMTraj.jsonl by the time its caller has the whole answer: the
 * file is read synchronously the instant the JSON body is parsed or the final SSE event arrives,
 * in proxy and local mode, in append and overwrite mode, against real servers on loopback.
 */
import assert from "node:assert/strict";
import { LocalExchange } from "../../src/model_service/local_exchange.ts";
import { DEFAULT_MODEL_SERVICE_CONFIG } from "../../src/model_service/config.ts";
import { LlmProxy } from "../../src/model_service/proxy.ts";
import { TrajectoryWriter } from "../../src/model_service/traj.ts";
import { TrainerSession } from "../../src/sdk/trainer_session.ts";
import {
  chunk,
  completion,
  serveModelService,
  sseResponse,
  startFakeUpstream,
} from "../helpers/llm_upstream.ts";

interface TrajRecord {
  request: { messages: { content: string }[] };
  response: { choices: { message: { content: string } }[] };
}

interface Service {
  url: string;
  /** The records in the trajectory file at this instant (read synchronously). */
  records(): TrajRecord[];
}

/** What the upstream (proxy) or the trainer (local) answers to `content`. */
const answerTo = (content: string) => `answer to ${content}`;

function recordsIn(path: string): TrajRecord[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // JSON.parse throws on a torn line: every line must be whole.
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

/**
 * A proxy whose upstream answers `answerTo(content)`, as JSON or as a stream: the content, then
 * a chunk with the finish reason (unless `finish` is false), then [DONE] (unless `done` is
 * false), `delayMs` before each event and before the end.
 */
async function withProxy(
  options: { append: boolean; finish?: boolean; done?: boolean; delayMs?: number },
  fn: (service: Service) => Promise<void>,
): Promise<void> {
  await using upstream = startFakeUpstream((call) => {
    const content = answerTo((call.body.messages as { content: string }[])[0]?.content ?? "");
    if (!call.body.stream) return Response.json(completion(content));
    const events = [chunk({ role: "assistant", content }), chunk({}, "stop")];
    return sseResponse(options.finish === false ? events.slice(0, 1) : events, options);
  });
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-traj-" });
  try {
    const path = `${dir}/LLMTraj.jsonl`;
    const proxy = new LlmProxy({
      config: { ...DEFAULT_MODEL_SERVICE_CONFIG, proxyBaseUrl: upstream.url },
    });
    const trajectory = new TrajectoryWriter(path, { append: options.append });
    await using served = serveModelService({ type: "proxy", proxy, trajectory });
    await fn({ url: served.url, records: () => recordsIn(path) });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A local-mode service whose trainer (a TrainerSession in this process) answers `answerTo`. */
async function withLocal(
  options: { append: boolean },
  fn: (service: Service) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-traj-" });
  const stop = new AbortController();
  try {
    const path = `${dir}/LLMTraj.jsonl`;
    const exchange = LocalExchange.open({ exchangeFile: `${dir}/LLMService.log` });
    const trajectory = new TrajectoryWriter(path, { append: options.append });
    await using served = serveModelService({ type: "local", exchange, trajectory });
    using session = TrainerSession.forDataDir(dir);
    const trainer = (async () => {
      for (let request; (request = await session.next(stop.signal));) {
        const asked = request.body.messages as { content: string }[];
        session.respond(request.index, completion(answerTo(asked[0]?.content ?? "")));
      }
    })();
    try {
      await fn({ url: served.url, records: () => recordsIn(path) });
    } finally {
      stop.abort();
      await trainer;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ask(url: string, content: string, stream: boolean): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "test-model", stream, messages: [{ role: "user", content }] }),
  });
}

/** Calls once without streaming; returns the records read the instant the body is parsed. */
async function askJson(service: Service, content: string): Promise<TrajRecord[]> {
  const response = await ask(service.url, content, false);
  const body = await response.json();
  const records = service.records();
  assert.equal(body.choices[0].message.content, answerTo(content));
  return records;
}

/**
 * Calls once with `stream: true`; returns the records read the instant the final event arrives:
 * `data: [DONE]`, or without it the event that carries the finish reason.
 */
async function askStream(service: Service, content: string): Promise<TrajRecord[]> {
  const response = await ask(service.url, content, true);
  let text = "";
  let records: TrajRecord[] | undefined;
  for await (const piece of response.body!.pipeThrough(new TextDecoderStream())) {
    text += piece;
    if (!records && /(data: \[DONE\]|"finish_reason":"stop"[^\n]*)\n\n/.test(text)) {
      records = service.records();
    }
  }
  assert.ok(records, `no final event in: ${text}`);
  assert.match(text, new RegExp(answerTo(content)));
  return records;
}

/** Asserts the records hold call `n` of a sequence (as the last of n, or alone when overwriting). */
function assertRecorded(records: TrajRecord[], n: number, append: boolean): void {
  assert.equal(records.length, append ? n : 1, `records after call ${n}`);
  const last = records.at(-1)!;
  assert.equal(last.request.messages[0]?.content, `call ${n}`);
  assert.equal(last.response.choices[0]?.message.content, answerTo(`call ${n}`));
}

const CALLS = 5;

for (const append of [true, false]) {
  const mode = append ? "append" : "overwrite";

  Deno.test(`proxy, ${mode} mode: a JSON answer's record is on disk when the client has parsed the body`, async () => {
    await withProxy({ append }, async (service) => {
      for (let n = 1; n <= CALLS; n++) {
        assertRecorded(await askJson(service, `call ${n}`), n, append);
      }
    });
  });

  Deno.test(`proxy, ${mode} mode: a stream's record is on disk when the client sees data: [DONE], finish reason or not`, async () => {
    // The upstream ends the stream a while after [DONE]: the end is too late for the record.
    for (const finish of [true, false]) {
      await withProxy({ append, finish, delayMs: 20 }, async (service) => {
        for (let n = 1; n <= CALLS; n++) {
          assertRecorded(await askStream(service, `call ${n}`), n, append);
        }
      });
    }
  });

  Deno.test(`proxy, ${mode} mode: a stream without [DONE] has its record on disk when the client sees its finishing event`, async () => {
    // The upstream ends the stream a while after its last event: the end is too late.
    await withProxy({ append, done: false, delayMs: 20 }, async (service) => {
      for (let n = 1; n <= CALLS; n++) {
        assertRecorded(await askStream(service, `call ${n}`), n, append);
      }
    });
  });

  Deno.test(`local, ${mode} mode: the record is on disk when the agent has parsed the body, or seen data: [DONE]`, async () => {
    await withLocal({ append }, async (service) => {
      for (let n = 1; n <= CALLS; n++) {
        const ask = n % 2 === 0 ? askStream : askJson;
        assertRecorded(await ask(service, `call ${n}`), n, append);
      }
    });
  });
}

Deno.test("proxy: concurrent calls each find their record whole in the file when answered (append), or one whole line (overwrite)", async () => {
  for (const append of [true, false]) {
    await withProxy({ append }, async (service) => {
      const contents = Array.from({ length: 20 }, (_, i) => `call ${i + 1}`);
      await Promise.all(contents.map(async (content, i) => {
        const records = await (i % 2 ? askStream : askJson)(service, content);
        if (append) {
          assert.ok(records.some((r) => r.request.messages[0]?.content === content), content);
        } else {
          assert.equal(records.length, 1);
        }
      }));
      assert.equal(service.records().length, append ? contents.length : 1);
    });
  }
});

const prlimit = await new Deno.Command("prlimit", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);
if (!prlimit) console.error("torn-line test ignored: no `prlimit` executable");

const TRAJ_MODULE = new URL("../../src/model_service/traj.ts", import.meta.url).href;

Deno.test({
  name:
    "TrajectoryWriter cuts off the part of a line a failed write left: the next record starts its own line",
  ignore: !prlimit,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "rock-ms-traj-" });
    try {
      await Deno.writeTextFile(
        `${dir}/writer.ts`,
        `import { TrajectoryWriter } from "${TRAJ_MODULE}";
const writer = new TrajectoryWriter(Deno.args[0], { append: true });
writer.record({ n: 1 }, { ok: 1 });
writer.record({ n: 2, text: "x".repeat(100000) }, { ok: 2 });
writer.record({ n: 3 }, { ok: 3 });
writer.close();
`,
      );
      // A 64 KiB file size limit: the second record's write stops part way (EFBIG; SIGXFSZ is
      // ignored, and an ignored signal stays ignored across exec).
      const script = `trap '' XFSZ; exec "$0" run --allow-all --no-config "$1" "$2"`;
      const output = await new Deno.Command("prlimit", {
        args: [
          "--fsize=65536",
          "bash",
          "-c",
          script,
          Deno.execPath(),
          `${dir}/writer.ts`,
          `${dir}/LLMTraj.jsonl`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      const requests = recordsIn(`${dir}/LLMTraj.jsonl`).map((r) => JSON.stringify(r.request));
      assert.deepEqual(requests, ['{"n":1}', '{"n":3}']);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
