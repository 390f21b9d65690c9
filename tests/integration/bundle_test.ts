/** `deno task bundle` output: one JavaScript file that serves the rocklet with only deno. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
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
