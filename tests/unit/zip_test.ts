import assert from "node:assert/strict";
import { seededBytes, sha256Hex } from "../helpers/bytes.ts";
import { hostToolTest } from "../helpers/host_tools.ts";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Uint8ArrayReader, ZipWriter } from "@zip.js/zip.js";
import { extractZip, ZipError } from "../../src/formats/zip_reader.ts";
import { zipDirectory } from "../../src/formats/zip_writer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const encoder = new TextEncoder();
const HELLO = encoder.encode("hello");
const HELLO_CRC = 0x3610a686; // CRC-32 of "hello"

/** Runs fn with a fresh temp directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rock-zip-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes the archive of srcDir to zipPath. */
async function writeZip(srcDir: string, zipPath: string): Promise<void> {
  const file = await Deno.open(zipPath, { write: true, create: true, truncate: true });
  await zipDirectory(srcDir).pipeTo(file.writable);
}

/** Every directory and file under root: type, permission bits and content hash. */
async function snapshot(root: string, prefix = ""): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const names: string[] = [];
  for await (const entry of Deno.readDir(join(root, prefix))) names.push(entry.name);
  for (const name of names.sort()) {
    const rel = prefix === "" ? name : `${prefix}/${name}`;
    const info = await Deno.lstat(join(root, rel));
    const mode = ((info.mode ?? 0) & 0o777).toString(8);
    if (info.isDirectory) {
      result.set(`${rel}/`, `dir ${mode}`);
      for (const [key, value] of await snapshot(root, rel)) result.set(key, value);
    } else if (info.isFile) {
      result.set(rel, `file ${mode} ${await sha256Hex(await Deno.readFile(join(root, rel)))}`);
    } else {
      result.set(rel, "other");
    }
  }
  return result;
}

/** An entry of a hand-made archive (stored, never compressed). */
interface CraftedEntry {
  name: string;
  data?: Uint8Array;
  crc?: number;
  method?: number;
  flags?: number;
  madeBy?: number;
  attributes?: number;
}

/** Builds a zip by hand, with whatever (possibly hostile) fields the test needs. */
function craftZip(entries: CraftedEntry[], options: { zip64?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const data = entry.data ?? HELLO;
    const crc = entry.crc ?? HELLO_CRC;
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, entry.flags ?? 0, true);
    lv.setUint16(8, entry.method ?? 0, true);
    lv.setUint16(12, 0x21, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const record = new Uint8Array(46 + name.length);
    const cv = new DataView(record.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, entry.madeBy ?? 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, entry.flags ?? 0, true);
    cv.setUint16(10, entry.method ?? 0, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(38, entry.attributes ?? 0, true);
    cv.setUint32(42, offset, true);
    record.set(name, 46);
    parts.push(local, data);
    central.push(record);
    offset += local.length + data.length;
  }
  const centralSize = central.reduce((sum, record) => sum + record.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, options.zip64 ? 0xffff : entries.length, true);
  ev.setUint16(10, options.zip64 ? 0xffff : entries.length, true);
  ev.setUint32(12, centralSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const zip = new Uint8Array(all.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of all) {
    zip.set(part, at);
    at += part.length;
  }
  return zip;
}

/** Asserts that extracting `zip` fails with a ZipError matching `message`. */
async function assertExtractRejects(
  zipPath: string,
  destDir: string,
  message: RegExp,
): Promise<void> {
  await assert.rejects(extractZip(zipPath, destDir), (error: unknown) => {
    assert.ok(error instanceof ZipError, `expected ZipError, got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

/** Lists a directory (names only). */
async function list(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Creates a source tree with nested and empty directories, binary and unicode-named files, modes. */
async function makeTree(root: string): Promise<number> {
  const files: Array<[string, Uint8Array, number]> = [
    ["empty.txt", new Uint8Array(0), 0o644],
    ["random.bin", seededBytes(700_000, 7), 0o755],
    ["nested/deeper/deepest/text.txt", encoder.encode("line of text\n".repeat(40_000)), 0o640],
    ["nested/zeros.bin", new Uint8Array(100_000), 0o600],
    ["nested/\u00e9t\u00e9/\u65e5\u672c\u8a9e.txt", encoder.encode("unicode \u2603"), 0o604],
    ["\u{1F600} smile.bin", seededBytes(1000, 9), 0o700],
  ];
  const dirs: Array<[string, number]> = [
    ["nested", 0o755],
    ["nested/deeper", 0o750],
    ["nested/deeper/deepest", 0o700],
    ["nested/\u00e9t\u00e9", 0o755],
    ["empty-dir", 0o711],
  ];
  for (const [dir] of dirs) await Deno.mkdir(join(root, dir), { recursive: true });
  for (const [path, data, mode] of files) {
    await Deno.writeFile(join(root, path), data);
    await Deno.chmod(join(root, path), mode);
  }
  for (const [dir, mode] of dirs) await Deno.chmod(join(root, dir), mode);
  return files.length + dirs.length;
}

Deno.test("zipDirectory() and extractZip() round-trip a tree with nested dirs, unicode names and modes", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    const dest = join(dir, "dest", "not", "yet", "there");
    await Deno.mkdir(src);
    const count = await makeTree(src);
    await writeZip(src, join(dir, "tree.zip"));
    assert.equal(await extractZip(join(dir, "tree.zip"), dest), count);
    const expected = await snapshot(src);
    assert.equal(expected.size, count);
    assert.deepEqual(await snapshot(dest), expected);
    assert.equal(expected.get("nested/deeper/"), "dir 750");
    assert.match(expected.get("random.bin") ?? "", /^file 755 /);
  });
});

Deno.test("zipDirectory() compresses text and flags non-ASCII names as UTF-8", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(src);
    await Deno.writeFile(join(src, "a.txt"), encoder.encode("abc".repeat(100_000)));
    await Deno.writeFile(join(src, "b.bin"), seededBytes(100_000, 3));
    await writeZip(src, join(dir, "out.zip"));
    const zip = await Deno.readFile(join(dir, "out.zip"));
    assert.ok(zip.length < 100_000 + 300_000 / 10, `archive is ${zip.length} bytes`);
    const view = new DataView(zip.buffer);
    assert.equal(view.getUint16(8, true), 8, "a.txt is deflated");
    assert.equal(view.getUint16(6, true) & 0x0800, 0, "an ASCII name needs no UTF-8 flag");
    assert.equal(await extractZip(join(dir, "out.zip"), join(dir, "out")), 2);
    assert.deepEqual(await snapshot(join(dir, "out")), await snapshot(src));
    const unicode = join(dir, "unicode");
    await Deno.mkdir(unicode);
    await Deno.writeTextFile(join(unicode, "\u00e9t\u00e9.txt"), "summer");
    await writeZip(unicode, join(dir, "unicode.zip"));
    const flags = new DataView((await Deno.readFile(join(dir, "unicode.zip"))).buffer).getUint16(
      6,
      true,
    );
    assert.equal(flags & 0x0800, 0x0800, "a non-ASCII name is flagged as UTF-8");
  });
});

Deno.test("zipDirectory() skips symbolic links and errors when the source is not a directory", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(dir, "outside.txt"), "secret");
    await Deno.writeTextFile(join(src, "inside.txt"), "data");
    await Deno.symlink(join(dir, "outside.txt"), join(src, "link.txt"));
    await writeZip(src, join(dir, "out.zip"));
    assert.equal(await extractZip(join(dir, "out.zip"), join(dir, "out")), 1);
    assert.deepEqual(await list(join(dir, "out")), ["inside.txt"]);
    await assert.rejects(
      writeZip(join(src, "inside.txt"), join(dir, "x.zip")),
      /Cannot zip .*: not a directory/,
    );
    await assert.rejects(
      writeZip(join(dir, "missing"), join(dir, "y.zip")),
      (error: Error & { code?: string }) => error.code === "ENOENT",
    );
  });
});

hostToolTest(["unzip"], "zipDirectory() output passes unzip -t", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(src);
    await makeTree(src);
    await writeZip(src, join(dir, "tree.zip"));
    const result = await new Deno.Command("unzip", { args: ["-t", join(dir, "tree.zip")] })
      .output();
    assert.ok(result.success, new TextDecoder().decode(result.stdout));
    assert.match(new TextDecoder().decode(result.stdout), /No errors detected/);
  });
});

hostToolTest(
  ["zip"],
  "extractZip() reads archives written by Info-ZIP zip, including streamed entries",
  async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      await Deno.mkdir(src);
      await makeTree(src);
      const zipped = await new Deno.Command("zip", {
        args: ["-qr", join(dir, "cli.zip"), "."],
        cwd: src,
      }).output();
      assert.ok(zipped.success);
      assert.equal(
        await extractZip(join(dir, "cli.zip"), join(dir, "out")),
        (await snapshot(src)).size,
      );
      assert.deepEqual(await snapshot(join(dir, "out")), await snapshot(src));
      // "zip - -" writes stdin as entry "-" with a data descriptor and no sizes in its header.
      const child = new Deno.Command("zip", {
        args: ["-q", "-", "-"],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(encoder.encode("streamed ".repeat(10_000)));
      await writer.close();
      const output = await child.output();
      await Deno.writeFile(join(dir, "stdin.zip"), output.stdout);
      assert.equal(await extractZip(join(dir, "stdin.zip"), join(dir, "out2")), 1);
      assert.equal(await Deno.readTextFile(join(dir, "out2", "-")), "streamed ".repeat(10_000));
    });
  },
);

Deno.test("extractZip() extracts a hand-made archive and applies its unix modes", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(
      join(dir, "ok.zip"),
      craftZip([
        { name: "top.txt" },
        { name: "deep/nested/file.txt", madeBy: 0x0314, attributes: (0o100700 << 16) >>> 0 },
        { name: "empty", data: new Uint8Array(0), crc: 0 },
        { name: "dir/", madeBy: 0x0314, attributes: ((0o040750 << 16) >>> 0) | 0x10 },
      ]),
    );
    assert.equal(await extractZip(join(dir, "ok.zip"), join(dir, "out")), 4);
    assert.equal(await Deno.readTextFile(join(dir, "out", "deep/nested/file.txt")), "hello");
    assert.equal((await Deno.stat(join(dir, "out", "deep/nested/file.txt"))).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "out", "dir"))).mode! & 0o777, 0o750);
    assert.equal((await Deno.stat(join(dir, "out", "empty"))).size, 0);
  });
});

Deno.test("extractZip() rejects zip-slip names before writing anything", async () => {
  const names = [
    "../evil",
    "a/../../evil",
    "a/../b",
    "/tmp/evil",
    "..\\evil",
    "a\\..\\..\\evil",
    "C:/evil",
    "./../evil",
  ];
  for (const name of names) {
    await withTempDir(async (dir) => {
      const dest = join(dir, "dest");
      await Deno.writeFile(join(dir, "slip.zip"), craftZip([{ name: "ok.txt" }, { name }]));
      await assertExtractRejects(
        join(dir, "slip.zip"),
        dest,
        /"\.\." segments are not allowed|absolute paths/,
      );
      assert.deepEqual(await list(dir), ["slip.zip"], `entry ${name}`);
    });
  }
});

Deno.test("extractZip() refuses symbolic link entries", async () => {
  await withTempDir(async (dir) => {
    const link = {
      name: "link",
      data: encoder.encode("/etc"),
      crc: 0,
      madeBy: 0x0314,
      attributes: (0o120777 << 16) >>> 0,
    };
    await Deno.writeFile(join(dir, "link.zip"), craftZip([link, { name: "link/passwd" }]));
    await assertExtractRejects(
      join(dir, "link.zip"),
      join(dir, "out"),
      /symbolic link entries are not supported/,
    );
  });
});

Deno.test("extractZip() does not write through symbolic links already in the destination", async () => {
  await withTempDir(async (dir) => {
    const dest = join(dir, "dest");
    const outside = join(dir, "outside");
    await Deno.mkdir(dest);
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "target.txt"), "untouched");
    await Deno.symlink(outside, join(dest, "dirlink"));
    await Deno.symlink(join(outside, "target.txt"), join(dest, "filelink"));

    await Deno.writeFile(join(dir, "a.zip"), craftZip([{ name: "dirlink/evil.txt" }]));
    await assertExtractRejects(join(dir, "a.zip"), dest, /"dirlink" is a symbolic link/);
    await Deno.writeFile(join(dir, "b.zip"), craftZip([{ name: "filelink" }]));
    await assertExtractRejects(join(dir, "b.zip"), dest, /the target is a symbolic link/);

    assert.deepEqual(await list(outside), ["target.txt"]);
    assert.equal(await Deno.readTextFile(join(outside, "target.txt")), "untouched");
  });
});

Deno.test("extractZip() follows a destination that is itself a symbolic link", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "real"));
    await Deno.symlink(join(dir, "real"), join(dir, "alias"));
    await Deno.writeFile(join(dir, "a.zip"), craftZip([{ name: "x/hello.txt" }]));
    assert.equal(await extractZip(join(dir, "a.zip"), join(dir, "alias")), 1);
    assert.equal(await Deno.readTextFile(join(dir, "real", "x", "hello.txt")), "hello");
  });
});

Deno.test("extractZip() detects a CRC mismatch and removes the partial file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "good.zip"), craftZip([{ name: "hello.txt", crc: HELLO_CRC }]));
    assert.equal(await extractZip(join(dir, "good.zip"), join(dir, "good")), 1);
    assert.equal(await Deno.readTextFile(join(dir, "good", "hello.txt")), "hello");

    await Deno.writeFile(
      join(dir, "bad.zip"),
      craftZip([{ name: "hello.txt", crc: HELLO_CRC ^ 1 }]),
    );
    await assertExtractRejects(
      join(dir, "bad.zip"),
      join(dir, "bad"),
      /CRC-32 mismatch \(expected 0x3610a687\)/,
    );
    assert.deepEqual(await list(join(dir, "bad")), []);
  });
});

Deno.test("extractZip() detects corrupted deflate data", async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "t.txt"), "some compressible text\n".repeat(5000));
    await writeZip(src, join(dir, "t.zip"));
    const zip = await Deno.readFile(join(dir, "t.zip"));
    const view = new DataView(zip.buffer);
    assert.equal(view.getUint16(8, true), 8);
    const dataStart = 30 + view.getUint16(26, true);
    const compressed = view.getUint32(18, true);
    // Bytes that carry content; the last ones may only hold the end-of-stream block.
    for (const at of [0.01, 0.5, 0.9].map((share) => dataStart + Math.floor(compressed * share))) {
      const copy = zip.slice();
      copy[at] = (copy[at] ?? 0) ^ 0x5a;
      await Deno.writeFile(join(dir, "bad.zip"), copy);
      await assertExtractRejects(
        join(dir, "bad.zip"),
        join(dir, "out"),
        /corrupt deflate data|CRC-32 mismatch|differs from the declared size/,
      );
    }
  });
});

Deno.test("extractZip() rejects encrypted, unknown-method, malformed and non-zip archives", async () => {
  await withTempDir(async (dir) => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["encrypted", craftZip([{ name: "a", flags: 1 }]), /encrypted entries are not supported/],
      ["bzip2", craftZip([{ name: "a", method: 12 }]), /compression method 12 is not supported/],
      [
        "zip64 counts without zip64 records",
        craftZip([{ name: "a" }], { zip64: true }),
        /Cannot read zip .*: central directory header not found/,
      ],
      ["not a zip", seededBytes(5000, 1), /end of central directory record not found \(not a zip/],
      ["empty file", new Uint8Array(0), /not a zip file/],
      [
        "truncated",
        craftZip([{ name: "a" }, { name: "b" }]).subarray(10),
        /data lies outside the file|Cannot read zip/,
      ],
    ];
    for (const [label, bytes, message] of cases) {
      await Deno.writeFile(join(dir, `${label}.zip`), bytes);
      await assertExtractRejects(join(dir, `${label}.zip`), join(dir, "out"), message);
    }
  });
});

/** Writes a small archive with zip.js, every entry and the end records in zip64 form. */
async function writeForcedZip64(zipPath: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>([
    ["dir/a.txt", encoder.encode("zip64 text\n".repeat(5000))],
    ["b.bin", seededBytes(70_000, 13)],
  ]);
  const file = await Deno.open(zipPath, { write: true, create: true, truncate: true });
  const writer = new ZipWriter(file.writable, { zip64: true, useWebWorkers: false });
  await writer.add("dir/", undefined, { directory: true });
  for (const [name, data] of files) await writer.add(name, new Uint8ArrayReader(data));
  await writer.close();
  const zip = await Deno.readFile(zipPath);
  const view = new DataView(zip.buffer);
  const signatures = new Set<number>();
  for (let at = 0; at + 4 <= zip.length; at++) signatures.add(view.getUint32(at, true));
  assert.ok(signatures.has(0x06064b50), "a zip64 end of central directory record");
  assert.ok(signatures.has(0x07064b50), "a zip64 end of central directory locator");
  return files;
}

Deno.test("extractZip() reads a zip64 archive (zip64 forced on small entries)", async () => {
  await withTempDir(async (dir) => {
    const files = await writeForcedZip64(join(dir, "z64.zip"));
    assert.equal(await extractZip(join(dir, "z64.zip"), join(dir, "out")), 3);
    for (const [name, data] of files) {
      assert.deepEqual(await Deno.readFile(join(dir, "out", name)), data, name);
    }
  });
});

hostToolTest(
  ["zip", "unzip"],
  "zip64 archives interoperate with Info-ZIP: unzip -t passes ours, extractZip() reads zip -fz",
  async () => {
    await withTempDir(async (dir) => {
      await writeForcedZip64(join(dir, "z64.zip"));
      const tested = await new Deno.Command("unzip", { args: ["-t", join(dir, "z64.zip")] })
        .output();
      assert.ok(tested.success, new TextDecoder().decode(tested.stdout));
      assert.match(new TextDecoder().decode(tested.stdout), /No errors detected/);

      const src = join(dir, "src");
      await Deno.mkdir(src);
      await makeTree(src);
      const zipped = await new Deno.Command("zip", {
        args: ["-qr", "-fz", join(dir, "cli64.zip"), "."],
        cwd: src,
      }).output();
      assert.ok(zipped.success, new TextDecoder().decode(zipped.stderr));
      const zip = await Deno.readFile(join(dir, "cli64.zip"));
      const view = new DataView(zip.buffer);
      assert.equal(view.getUint32(zip.length - 22 - 20, true), 0x07064b50, "zip64 locator");
      assert.equal(
        await extractZip(join(dir, "cli64.zip"), join(dir, "out")),
        (await snapshot(src)).size,
      );
      assert.deepEqual(await snapshot(join(dir, "out")), await snapshot(src));
    });
  },
);

hostToolTest(
  ["node"],
  "zipDirectory() from zip_writer.ts runs under Node, with or without CompressionStream, and extractZip() reads its output",
  async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      await Deno.mkdir(src);
      await makeTree(src);
      const big = new Uint8Array(17 * 1024 * 1024 + 5);
      const block = seededBytes(1 << 16, 11);
      for (let at = 0; at < big.length; at += 2 * block.length) {
        big.set(block.subarray(0, big.length - at), at);
      }
      await Deno.writeFile(join(src, "big.bin"), big);
      await Deno.symlink(join(src, "random.bin"), join(src, "link.bin"));
      const expected = await snapshot(src);
      assert.equal(expected.get("link.bin"), "other");
      expected.delete("link.bin");

      const writer = new URL("../../src/formats/zip_writer.ts", import.meta.url).href;
      await Deno.writeTextFile(
        join(dir, "entry.ts"),
        [
          `import { open } from "node:fs/promises";`,
          `import process from "node:process";`,
          `import { zipDirectory } from ${JSON.stringify(writer)};`,
          `const [srcDir, zipPath, native] = process.argv.slice(2);`,
          // As on a Node without "deflate-raw" streams: zip.js must use the codec bundled in it.
          `if (native === "none") {`,
          `  delete (globalThis as Record<string, unknown>).CompressionStream;`,
          `  delete (globalThis as Record<string, unknown>).DecompressionStream;`,
          `}`,
          `const out = await open(zipPath, "w");`,
          `try {`,
          `  for await (const chunk of zipDirectory(srcDir)) await out.write(chunk);`,
          `} finally {`,
          `  await out.close();`,
          `}`,
        ].join("\n"),
      );
      // The project's import map resolves zip.js; the bundle is still one file.
      const bundled = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--quiet",
          "--config",
          join(ROOT, "deno.json"),
          "entry.ts",
          "--output",
          "entry.mjs",
        ],
        cwd: dir,
      }).output();
      assert.ok(bundled.success, new TextDecoder().decode(bundled.stderr));
      assert.doesNotMatch(await Deno.readTextFile(join(dir, "entry.mjs")), /\bDeno\./);

      for (const native of ["native", "none"]) {
        const zipPath = join(dir, `node-${native}.zip`);
        const ran = await new Deno.Command("node", {
          args: [join(dir, "entry.mjs"), src, zipPath, native],
          cwd: dir,
        }).output();
        assert.ok(ran.success, `node failed: ${new TextDecoder().decode(ran.stderr)}`);

        const header = new DataView((await Deno.readFile(zipPath)).buffer); // big.bin comes first
        assert.equal(header.getUint32(0, true), 0x04034b50);
        assert.equal(header.getUint16(6, true) & 0x0008, 0x0008, "big.bin has a data descriptor");
        assert.equal(header.getUint16(8, true), 8, "big.bin is deflated");
        const out = join(dir, `out-${native}`);
        assert.equal(await extractZip(zipPath, out), expected.size);
        const actual = await snapshot(out);
        assert.deepEqual(actual, expected);
        assert.match(actual.get("big.bin") ?? "", new RegExp(` ${await sha256Hex(big)}$`));
      }
    });
  },
);
