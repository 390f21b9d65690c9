/** Admin configuration: the shipped files validate; bad keys fail naming the file and key. */
import assert from "node:assert/strict";
import { loadAdminConfig, readConfigFile } from "../../src/admin/config.ts";
import { ConfigError } from "../../src/common/errors.ts";

const CONF = new URL("../../rock-conf/", import.meta.url);

Deno.test("the shipped rock-conf files are valid", async () => {
  for (const name of ["rock-local.yml", "rock-test.yml", "rock-dev.yml"]) {
    await readConfigFile(new URL(name, CONF).pathname);
  }
});

Deno.test("loadAdminConfig() applies defaults < file < environment < flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/c.yml`;
    await Deno.writeTextFile(
      file,
      "admin:\n  port: 9000\n  host: 127.0.0.2\nruntime:\n  default_auto_clear_time_minutes: 10\n",
    );
    const config = await loadAdminConfig({ config: file, host: "127.0.0.3" }, {
      HOME: dir,
      ROCK_DEFAULT_AUTO_CLEAR_TIME_MINUTES: "20",
    });
    assert.equal(config.port, 9000);
    assert.equal(config.host, "127.0.0.3");
    assert.equal(config.defaultAutoClearMinutes, 20);
    assert.equal(config.dataDir, `${dir}/.rock`);
    assert.equal(config.dbUrl, `file:${dir}/.rock/rock.db`);
    assert.equal(config.timeZone, "Asia/Shanghai");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadAdminConfig() rejects unknown keys, bad values and bad variables clearly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: Array<[string, RegExp]> = [
      ["admin:\n  prot: 80\n", /key "admin\.prot"/],
      ["runtime:\n  max_allowed_spec:\n    cpus: -1\n", /key "runtime\.max_allowed_spec\.cpus"/],
      [
        "runtime:\n  max_allowed_spec:\n    memory: lots\n",
        /key "runtime\.max_allowed_spec\.memory"/,
      ],
      ["docker:\n  publish_ip: 0.0.0.0\n", /key "docker\.publish_ip"/],
      ["admin: [1, 2\n", /Cannot parse config file/],
    ];
    for (const [text, pattern] of cases) {
      const file = `${dir}/bad.yml`;
      await Deno.writeTextFile(file, text);
      await assert.rejects(loadAdminConfig({ config: file }, { HOME: dir }), (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, pattern);
        assert.ok(error.message.includes(file), error.message);
        return true;
      });
    }
    await assert.rejects(loadAdminConfig({ env: "nope" }, { HOME: dir }), /rock-nope\.yml/);
    await assert.rejects(
      loadAdminConfig({}, { HOME: dir, ROCK_TIME_ZONE: "Mars/Olympus" }),
      /Invalid time zone/,
    );
    await assert.rejects(
      loadAdminConfig({}, { HOME: dir, ROCK_SANDBOX_STARTUP_TIMEOUT_SECONDS: "soon" }),
      /ROCK_SANDBOX_STARTUP_TIMEOUT_SECONDS/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
