import assert from "node:assert/strict";
import { concatBytes, seededBytes, sha256Hex } from "../helpers/bytes.ts";
import { createHash } from "node:crypto";
import {
  multipartBoundary,
  MultipartError,
  type MultipartPart,
  parseMultipart,
  readPartText,
} from "../../src/formats/multipart.ts";

const encoder = new TextEncoder();
const BOUNDARY = "----RockBoundary7MA4YWxkTrZu0gW";

interface PartSpec {
  headers: string[];
  body: Uint8Array | string;
}

interface ParsedPart {
  name: string;
  filename?: string;
  contentType?: string;
  bytes: Uint8Array;
}

/** Builds a multipart body from part specs. */
function buildBody(
  parts: PartSpec[],
  options: { preamble?: string; epilogue?: string; close?: boolean } = {},
): Uint8Array {
  const pieces: Uint8Array[] = [encoder.encode(options.preamble ?? "")];
  parts.forEach((part, index) => {
    const head = `${index === 0 && !options.preamble ? "" : "\r\n"}--${BOUNDARY}\r\n` +
      part.headers.map((header) => `${header}\r\n`).join("") + "\r\n";
    pieces.push(encoder.encode(head));
    pieces.push(typeof part.body === "string" ? encoder.encode(part.body) : part.body);
  });
  if (options.close ?? true) {
    pieces.push(encoder.encode(`\r\n--${BOUNDARY}--${options.epilogue ?? "\r\n"}`));
  }
  return concatBytes(pieces);
}

/** A stream yielding copies of `bytes` cut at the given offsets. */
function streamAt(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const edges = [0, ...cuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length];
  let index = 0;
  return new ReadableStream({
    pull(controller) {
      if (index + 1 >= edges.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(edges[index], edges[index + 1]));
      index++;
    },
  });
}

/** A stream yielding copies of `bytes` in chunks of `size` bytes. */
function streamOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const cuts: number[] = [];
  for (let offset = size; offset < bytes.length; offset += size) cuts.push(offset);
  return streamAt(bytes, cuts);
}

/** Reads a whole stream. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concatBytes(chunks);
}

/** Parses a body, reading every part fully. */
async function parseAll(
  stream: ReadableStream<Uint8Array>,
  options?: { maxHeaderBytes?: number },
): Promise<ParsedPart[]> {
  const parts: ParsedPart[] = [];
  for await (const part of parseMultipart(stream, BOUNDARY, options)) {
    const { body: _, ...rest } = part;
    parts.push({ ...rest, bytes: await readAll(part.body) });
  }
  return parts;
}

/**
 * Random bytes with look-alikes of the delimiter planted at random places. Every look-alike
 * ends in "Q" (not in BOUNDARY) and none is a real delimiter; the data ends with a proper
 * prefix of the delimiter, which the real delimiter then follows.
 */
function trickyBytes(length: number, seed: number): Uint8Array {
  const bytes = seededBytes(length, seed);
  const traps = [
    "\r\n--Q",
    "\r\n-Q",
    "\r\nQ",
    "\rQ",
    `\r\n--${BOUNDARY.slice(0, -1)}Q`,
    `Q--${BOUNDARY}Q`,
    `Q\n--${BOUNDARY}Q`,
    `Q\r\r--${BOUNDARY}Q`,
    `\r\r\n--${BOUNDARY.slice(0, 10)}Q`,
  ].map((trap) => encoder.encode(trap));
  const positions = seededBytes(64, seed + 7);
  for (let i = 0; i < 32; i++) {
    const trap = traps[i % traps.length] ?? new Uint8Array();
    const high = positions[i * 2] ?? 0;
    const at = Math.floor((high * 256 + (positions[i * 2 + 1] ?? 0)) / 65536 * length);
    if (at + trap.length <= length) bytes.set(trap, at);
  }
  const partial = encoder.encode(`\r\n--${BOUNDARY.slice(0, -2)}`);
  if (length > partial.length) bytes.set(partial, length - partial.length);
  return bytes;
}

const smallParts: PartSpec[] = [
  { headers: ['Content-Disposition: form-data; name="field"'], body: "value\r\n-- not a boundary" },
  {
    headers: [
      'Content-Disposition: form-data; name="file"; filename="a.bin"',
      "Content-Type: application/octet-stream",
    ],
    body: concatBytes([
      encoder.encode(`\r\n--${BOUNDARY.slice(0, -1)}\r\r\n-`),
      new Uint8Array([0, 255, 13, 10, 45, 45]),
    ]),
  },
  { headers: ['Content-Disposition: form-data; name="empty"'], body: "" },
];

/** Asserts the parts parsed from smallParts. */
function assertSmallParts(parts: ParsedPart[]): void {
  assert.equal(parts.length, 3);
  assert.deepEqual(parts.map((part) => part.name), ["field", "file", "empty"]);
  const [field, file, empty] = parts;
  assert.ok(field && file && empty);
  assert.equal(new TextDecoder().decode(field.bytes), "value\r\n-- not a boundary");
  assert.deepEqual(file.bytes, smallParts[1]?.body);
  assert.equal(file.filename, "a.bin");
  assert.equal(file.contentType, "application/octet-stream");
  assert.equal(empty.bytes.length, 0);
  assert.equal(field.filename, undefined);
  assert.equal(field.contentType, undefined);
}

Deno.test("multipartBoundary() returns quoted and unquoted boundaries", () => {
  assert.equal(multipartBoundary("multipart/form-data; boundary=abc123"), "abc123");
  assert.equal(multipartBoundary('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"'), "a b:c");
  assert.equal(multipartBoundary(`multipart/form-data;boundary=${BOUNDARY}`), BOUNDARY);
});

Deno.test("multipartBoundary() throws MultipartError when the header is missing or wrong", () => {
  assert.throws(() => multipartBoundary(null), /missing Content-Type/);
  assert.throws(() => multipartBoundary("text/plain; boundary=x"), /got "text\/plain"/);
  assert.throws(() => multipartBoundary("multipart/form-data"), /missing boundary/);
  assert.throws(() => multipartBoundary('multipart/form-data; boundary=""'), /missing boundary/);
  assert.throws(
    () => multipartBoundary(`multipart/form-data; boundary=${"x".repeat(71)}`),
    MultipartError,
  );
  assert.throws(
    () => multipartBoundary('multipart/form-data; boundary="ends in space "'),
    /invalid boundary/,
  );
});

Deno.test("parseMultipart() yields fields and files, skipping preamble and epilogue", async () => {
  const body = buildBody(smallParts, {
    preamble: `This is the preamble.\r\n--${BOUNDARY.slice(0, -1)} is not it\r\n`,
    epilogue: `\r\nepilogue with --${BOUNDARY}\r\n`,
  });
  assertSmallParts(await parseAll(streamOf(body, 1 << 20)));
});

Deno.test("parseMultipart() parses a body whose delimiter is split at every possible offset", async () => {
  const body = buildBody(smallParts, { preamble: "pre\r\n" });
  for (let cut = 0; cut <= body.length; cut++) {
    assertSmallParts(await parseAll(streamAt(body, [cut])));
  }
});

Deno.test("parseMultipart() parses a body split at every pair of offsets around a delimiter", async () => {
  const body = buildBody(smallParts);
  const second = new TextDecoder().decode(body).indexOf(`\r\n--${BOUNDARY}`, 1);
  assert.ok(second > 0);
  for (let first = second - 6; first < second + BOUNDARY.length + 8; first++) {
    for (let cut = first + 1; cut < second + BOUNDARY.length + 10; cut++) {
      assertSmallParts(await parseAll(streamAt(body, [first, cut])));
    }
  }
});

Deno.test("parseMultipart() parses a body delivered one byte at a time", async () => {
  const body = buildBody(smallParts, { preamble: "x\r\n", epilogue: "tail" });
  assertSmallParts(await parseAll(streamOf(body, 1)));
});

Deno.test("parseMultipart() yields byte-exact binary when delimiter look-alikes cross chunks", async () => {
  const files = [trickyBytes(300_000, 11), trickyBytes(70_001, 12), trickyBytes(5, 13)] as const;
  const body = buildBody(files.map((bytes, index) => ({
    headers: [`Content-Disposition: form-data; name="f${index}"; filename="f${index}.bin"`],
    body: bytes,
  })));
  const expected = await Promise.all(files.map(sha256Hex));
  for (const size of [2, 3, 7, 41, 4096, 65536, 1 << 20]) {
    const parts = await parseAll(streamOf(body, size));
    assert.deepEqual(
      await Promise.all(parts.map((part) => sha256Hex(part.bytes))),
      expected,
      `chunk size ${size}`,
    );
  }
  const oneByte = buildBody([{
    headers: ['Content-Disposition: form-data; name="f"'],
    body: files[1],
  }]);
  const [part] = await parseAll(streamOf(oneByte, 1));
  assert.ok(part);
  assert.equal(await sha256Hex(part.bytes), expected[1]);
});

Deno.test("parseMultipart() yields byte-exact random parts at random chunk sizes", async () => {
  const random = seededBytes(64, 99);
  for (let round = 0; round < 16; round++) {
    const files = [
      trickyBytes(1000 + round * 997, round + 1),
      seededBytes(round * 13, round + 50),
    ] as const;
    const body = buildBody(files.map((bytes, index) => ({
      headers: [`Content-Disposition: form-data; name="p${index}"`],
      body: bytes,
    })));
    const cuts: number[] = [];
    let offset = 0;
    for (let i = 0; offset < body.length; i++) {
      offset += 1 + ((random[(round + i) % 64] ?? 0) * (round + 1)) % 600;
      cuts.push(offset);
    }
    const parts = await parseAll(streamAt(body, cuts));
    assert.equal(parts.length, 2);
    const [first, second] = parts;
    assert.ok(first && second);
    assert.equal(await sha256Hex(first.bytes), await sha256Hex(files[0]));
    assert.equal(await sha256Hex(second.bytes), await sha256Hex(files[1]));
  }
});

Deno.test("parseMultipart() drains a part body the consumer did not read", async () => {
  const big = trickyBytes(200_000, 5);
  const body = buildBody([
    { headers: ['Content-Disposition: form-data; name="skipped"'], body: big },
    { headers: ['Content-Disposition: form-data; name="also-skipped"'], body: "abc" },
    { headers: ['Content-Disposition: form-data; name="read"'], body: "kept" },
  ]);
  for (const size of [3, 1000, 1 << 20]) {
    const seen: MultipartPart[] = [];
    let text = "";
    for await (const part of parseMultipart(streamOf(body, size), BOUNDARY)) {
      seen.push(part);
      if (part.name === "read") text = await readPartText(part);
    }
    assert.deepEqual(seen.map((part) => part.name), ["skipped", "also-skipped", "read"]);
    assert.equal(text, "kept");
    // A skipped body must not look like a complete (empty) body afterwards.
    const [skipped] = seen;
    assert.ok(skipped);
    await assert.rejects(readAll(skipped.body), /requested before this body was read/);
  }
});

Deno.test("parseMultipart() continues after a part body is partly read or cancelled", async () => {
  const body = buildBody([
    { headers: ['Content-Disposition: form-data; name="partial"'], body: seededBytes(50_000, 3) },
    { headers: ['Content-Disposition: form-data; name="cancelled"'], body: seededBytes(50_000, 4) },
    { headers: ['Content-Disposition: form-data; name="last"'], body: "end" },
  ]);
  const texts: string[] = [];
  for await (const part of parseMultipart(streamOf(body, 4096), BOUNDARY)) {
    if (part.name === "partial") {
      const reader = part.body.getReader();
      const first = await reader.read();
      assert.ok(!first.done && first.value.length > 0);
      reader.releaseLock();
    } else if (part.name === "cancelled") {
      await part.body.cancel();
    } else {
      texts.push(await readPartText(part));
    }
  }
  assert.deepEqual(texts, ["end"]);
});

Deno.test("parseMultipart() reads quoted, escaped and extended file names", async () => {
  const body = buildBody([
    {
      headers: ['Content-Disposition: form-data; name="a"; filename="say \\"hi\\".txt"'],
      body: "1",
    },
    { headers: ["content-disposition: form-data; filename=plain.txt; name=b"], body: "2" },
    {
      headers: [
        `Content-Disposition: form-data; name="c"; filename="euro.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`,
      ],
      body: "3",
    },
    {
      headers: ['Content-Disposition: form-data; name="d"; filename="C:\\dir\\x;y.txt"'],
      body: "4",
    },
    {
      headers: [
        'Content-Disposition: form-data; name="e"; filename=""',
        "Content-Type: text/plain",
      ],
      body: "",
    },
    { headers: ["Content-Disposition: form-data;", ' name="folded"'], body: "6" },
    { headers: ['Content-Disposition: form-data; name="\u00e9t\u00e9"'], body: "7" },
  ]);
  const parts = await parseAll(streamOf(body, 5));
  assert.deepEqual(
    parts.map((part) => [part.name, part.filename]),
    [
      ["a", 'say "hi".txt'],
      ["b", "plain.txt"],
      ["c", "\u20ac rates.txt"],
      ["d", "C:\\dir\\x;y.txt"],
      ["e", ""],
      ["folded", undefined],
      ["\u00e9t\u00e9", undefined],
    ],
  );
  assert.equal(parts[4]?.contentType, "text/plain");
});

Deno.test("parseMultipart() accepts a body that starts with the boundary and has no epilogue", async () => {
  const body = encoder.encode(
    `--${BOUNDARY}  \r\nContent-Disposition: form-data; name="x"\r\n\r\nhello\r\n--${BOUNDARY}--`,
  );
  const parts = await parseAll(streamOf(body, 7));
  assert.equal(parts.length, 1);
  assert.equal(new TextDecoder().decode(parts[0]?.bytes), "hello");
});

Deno.test("parseMultipart() yields nothing for a body with only a closing delimiter", async () => {
  assert.deepEqual(await parseAll(streamOf(encoder.encode(`--${BOUNDARY}--\r\n`), 3)), []);
});

Deno.test("parseMultipart() throws MultipartError when the body is malformed", async () => {
  const disposition = 'Content-Disposition: form-data; name="x"';
  const cases: Array<[string, Uint8Array | string, RegExp]> = [
    ["no opening delimiter", "just some text", /missing opening boundary/],
    ["empty body", "", /missing opening boundary/],
    [
      "no closing delimiter",
      buildBody([{ headers: [disposition], body: "abc" }], { close: false }),
      /missing closing boundary/,
    ],
    [
      "truncated closing delimiter",
      `--${BOUNDARY}\r\n${disposition}\r\n\r\nabc\r\n--${BOUNDARY}-`,
      /unexpected end of body after boundary/,
    ],
    [
      "end inside headers",
      `--${BOUNDARY}\r\n${disposition}\r\n`,
      /unexpected end of body in part headers/,
    ],
    [
      "garbage after boundary",
      `--${BOUNDARY}xyz\r\n${disposition}\r\n\r\na\r\n--${BOUNDARY}--`,
      /expected CRLF after boundary/,
    ],
    [
      "no Content-Disposition",
      buildBody([{ headers: ["Content-Type: text/plain"], body: "a" }]),
      /no Content-Disposition header/,
    ],
    [
      "no name",
      buildBody([{ headers: ['Content-Disposition: form-data; filename="a"'], body: "a" }]),
      /no name in Content-Disposition/,
    ],
    [
      "header without colon",
      buildBody([{ headers: [disposition, "Bogus header line"], body: "a" }]),
      /malformed part header "Bogus header line"/,
    ],
    [
      "headers too big",
      buildBody([{ headers: [disposition, `X-Big: ${"y".repeat(200)}`], body: "a" }]),
      /part headers exceed 128 bytes/,
    ],
  ];
  for (const [label, body, message] of cases) {
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    for (const size of [1, 1 << 20]) {
      await assert.rejects(
        parseAll(streamOf(bytes, size), { maxHeaderBytes: 128 }),
        (error: unknown) => {
          assert.ok(error instanceof MultipartError, `${label}: ${error}`);
          assert.match(error.message, message, label);
          assert.match(error.message, /^Cannot parse multipart body: /, label);
          return true;
        },
      );
    }
  }
});

Deno.test("parseMultipart() errors the part body and the generator when the body ends early", async () => {
  const body = buildBody([{
    headers: ['Content-Disposition: form-data; name="x"'],
    body: seededBytes(10_000, 1),
  }], {
    close: false,
  });
  const parts = parseMultipart(streamOf(body, 1000), BOUNDARY);
  const first = await parts.next();
  assert.ok(!first.done);
  await assert.rejects(readAll(first.value.body), /missing closing boundary/);
  await assert.rejects(parts.next(), /missing closing boundary/);
});

Deno.test("parseMultipart() rejects an invalid boundary or maxHeaderBytes", async () => {
  await assert.rejects(
    parseMultipart(streamOf(new Uint8Array(1), 1), "").next(),
    /invalid boundary ""/,
  );
  await assert.rejects(
    parseMultipart(streamOf(new Uint8Array(1), 1), "ok", { maxHeaderBytes: 0 }).next(),
    /invalid maxHeaderBytes 0/,
  );
});

Deno.test("parseMultipart() cancels the source when the consumer stops early", async () => {
  let cancelled = false;
  const head = buildBody([{ headers: ['Content-Disposition: form-data; name="x"'], body: "a" }], {
    close: false,
  });
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(head);
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const part of parseMultipart(source, BOUNDARY)) {
    assert.equal(part.name, "x");
    break;
  }
  assert.ok(cancelled);
});

Deno.test("readPartText() reads a field and rejects one above maxBytes", async () => {
  const body = buildBody([
    { headers: ['Content-Disposition: form-data; name="small"'], body: "h\u00e9llo" },
    { headers: ['Content-Disposition: form-data; name="large"'], body: "x".repeat(5000) },
    { headers: ['Content-Disposition: form-data; name="after"'], body: "ok" },
  ]);
  const texts: string[] = [];
  for await (const part of parseMultipart(streamOf(body, 100), BOUNDARY)) {
    if (part.name === "large") {
      await assert.rejects(
        readPartText(part, 4096),
        /Cannot read part "large": body exceeds 4096 bytes/,
      );
    } else {
      texts.push(await readPartText(part));
    }
  }
  assert.deepEqual(texts, ["h\u00e9llo", "ok"]);
});

/** What the memory probe measured. */
interface ProbeResult {
  names: string[];
  afterText: string;
  received: number;
  sentHash: string;
  receivedHash: string;
  rssGrowthMiB: number;
  mibPerSecond: number;
}

/**
 * Streams a 256 MiB file part, generated chunk by chunk, through the parser and measures RSS
 * growth. Runs in a process of its own: `deno test --parallel` runs test files in one process,
 * whose RSS other files would inflate.
 */
async function memoryProbe(): Promise<ProbeResult> {
  const chunkSize = 1 << 20;
  const chunks = 256;
  const head = encoder.encode(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`,
  );
  const tail = encoder.encode(
    `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="after"\r\n\r\nok\r\n--${BOUNDARY}--\r\n`,
  );
  const partial = encoder.encode(`\r\n--${BOUNDARY.slice(0, -1)}`);
  // V8 collects dead 1 MiB chunks lazily (tens of MiB late); collecting before each sample makes
  // RSS show what is still referenced. Needs --v8-flags=--expose-gc.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("The memory probe needs --v8-flags=--expose-gc");
  const sent = createHash("sha256");
  let produced = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced === 0) controller.enqueue(head);
      if (produced === chunks) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      const chunk = new Uint8Array(chunkSize);
      for (let offset = 0; offset < chunkSize; offset += 65536) {
        crypto.getRandomValues(chunk.subarray(offset, offset + 65536));
      }
      // Every 16th chunk ends with a proper prefix of the delimiter; the next one breaks it.
      if (produced % 16 === 0) chunk.set(partial, chunkSize - partial.length);
      if (produced % 16 === 1) chunk[0] = 0x51;
      sent.update(chunk);
      produced++;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });

  gc();
  const before = Deno.memoryUsage().rss;
  let peak = before;
  let received = 0;
  const got = createHash("sha256");
  const names: string[] = [];
  let afterText = "";
  const started = performance.now();
  for await (const part of parseMultipart(source, BOUNDARY)) {
    names.push(part.name);
    if (part.name !== "file") {
      afterText = await readPartText(part);
      continue;
    }
    for await (const chunk of part.body) {
      got.update(chunk);
      received += chunk.length;
      if (received % (16 * chunkSize) < chunk.length) {
        gc();
        peak = Math.max(peak, Deno.memoryUsage().rss);
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  gc();
  peak = Math.max(peak, Deno.memoryUsage().rss);
  return {
    names,
    afterText,
    received,
    sentHash: sent.digest("hex"),
    receivedHash: got.digest("hex"),
    rssGrowthMiB: (peak - before) / 2 ** 20,
    mibPerSecond: received / 2 ** 20 / seconds,
  };
}

// `deno run --v8-flags=--expose-gc tests/unit/multipart_test.ts --memory-probe` prints the
// probe's result as JSON.
if (import.meta.main && Deno.args.includes("--memory-probe")) {
  console.log(JSON.stringify(await memoryProbe()));
}

Deno.test("parseMultipart() streams a 256 MiB part with bounded memory", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--quiet",
      "--v8-flags=--expose-gc",
      import.meta.filename!,
      "--memory-probe",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.ok(output.success, decoder.decode(output.stderr));
  const result: ProbeResult = JSON.parse(decoder.decode(output.stdout));
  assert.deepEqual(result.names, ["file", "after"]);
  assert.equal(result.afterText, "ok");
  assert.equal(result.received, 256 * 2 ** 20);
  assert.equal(result.receivedHash, result.sentHash);
  assert.ok(result.rssGrowthMiB < 64, `RSS grew by ${result.rssGrowthMiB.toFixed(1)} MiB`);
});
