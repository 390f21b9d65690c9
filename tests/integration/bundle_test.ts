/** `deno task bundle` output: one JavaScript file that serves the rocklet with only deno. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { ensureBundle } from "../../src/sandbox/rocklet_launcher.ts";
import { zipDirectory } from "../../src/formats/zip_writer.ts";
import { spawnServer } from "../helpers/process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("the bundle serves `rock rocklet` with nothing but the deno executable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-bundle-" });
  try {
    const out = `${dir}/rock.js`;
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "main.ts", "--output", out],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
    // zip.js, imported at the first zip use, is inlined, never fetched when the bundle runs.
    const text = await Deno.readTextFile(out);
    assert.match(text, /ZipReader = class\b/);
    assert.doesNotMatch(text, /import\(\s*["'](npm:|@zip\.js)/);
    // Run from an empty directory with no config, import map or node_modules in reach.
    const { url, child, stderr } = await spawnServer(
      [
        "run",
        "--allow-all",
        "--unstable-no-legacy-abort",
        "--no-config",
        out,
        "rocklet",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      { cwd: dir },
    );
    try {
      await fetch(`${url}/create_session`, { method: "POST", body: "{}" }).then((r) =>
        r.body?.cancel()
      );
      const run = await fetch(`${url}/run_in_session`, {
        method: "POST",
        body: '{"command": "echo from-bundle"}',
      });
      assert.equal((await run.json()).output, "from-bundle");
    } finally {
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0, await stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the sandboxes' rocklet bundle is split: the zip library loads from its own file on first use, and unzips", async () => {
  const cache = await Deno.makeTempDir({ prefix: "rock-bundle-split-" });
  const work = await Deno.makeTempDir({ prefix: "rock-bundle-split-work-" });
  try {
    const entry = await ensureBundle(cache, "rocklet");
    const dir = dirname(entry);
    const files = [];
    for await (const file of Deno.readDir(dir)) files.push(file.name);
    assert.ok(files.length > 1, `one file only: ${files}`);
    const text = await Deno.readTextFile(entry);
    assert.doesNotMatch(text, /ZipReader = class\b/, "the zip library is in the entry file");
    // The entry reaches the library only through a dynamic import of a file beside it.
    assert.match(text, /import\("\.\/[^"]+\.js"\)/);
    const { url, child, stderr } = await spawnServer(
      [
        "run",
        "--allow-all",
        "--unstable-no-legacy-abort",
        "--no-config",
        entry,
        "rocklet",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      { cwd: work },
    );
    try {
      const body = new FormData();
      body.set("target_path", `${work}/out`);
      body.set("unzip", "true");
      body.set("file", new Blob([await zipOf({ "a/b.txt": "split bundle\n" }, work)]), "x.zip");
      const answer = await fetch(`${url}/upload`, { method: "POST", body });
      assert.equal(answer.status, 200, await answer.text());
      assert.equal(await Deno.readTextFile(`${work}/out/a/b.txt`), "split bundle\n");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await stderr;
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
});

/** A zip archive of `files` (path -> text), made with rock's own writer. */
async function zipOf(files: Record<string, string>, work: string): Promise<ArrayBuffer> {
  const root = `${work}/zip-src`;
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(`${root}/${path}`), { recursive: true });
    await Deno.writeTextFile(`${root}/${path}`, text);
  }
  return await new Response(zipDirectory(root)).arrayBuffer();
}
