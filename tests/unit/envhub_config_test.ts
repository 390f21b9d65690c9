/** `rock envhub` settings: database URLs (ROCK's sqlite:/// form included) and the EnvHub URL. */
import assert from "node:assert/strict";
import { resolveEnvHubSettings, toLibsqlUrl } from "../../src/cli/envhub.ts";
import { resolveEnvHubUrl } from "../../src/cli/envhub_actions.ts";
import { ConfigError } from "../../src/common/errors.ts";

Deno.test("toLibsqlUrl maps ROCK's SQLAlchemy sqlite URLs to libsql file URLs", () => {
  const home = "/home/rock";
  assert.equal(toLibsqlUrl("sqlite:////data/rock_envs.db", home), "file:/data/rock_envs.db");
  assert.equal(toLibsqlUrl("sqlite:///rock_envs.db", home), "file:rock_envs.db");
  assert.equal(toLibsqlUrl("sqlite+pysqlite:////x/y.db", home), "file:/x/y.db");
  assert.equal(toLibsqlUrl("sqlite://", home), ":memory:");
  assert.equal(toLibsqlUrl("sqlite:///:memory:", home), ":memory:");
  assert.equal(toLibsqlUrl("file:~/envs.db", home), "file:/home/rock/envs.db");
  assert.equal(toLibsqlUrl("file:/abs/envs.db", home), "file:/abs/envs.db");
  assert.equal(toLibsqlUrl("libsql://db.example.com", home), "libsql://db.example.com");
  assert.equal(toLibsqlUrl("http://127.0.0.1:8080", home), "http://127.0.0.1:8080");
  for (const bad of ["postgresql://u:secret@h/db", "sqlite://host/db", "rock_envs.db"]) {
    assert.throws(() => toLibsqlUrl(bad, home), ConfigError, bad);
  }
  assert.throws(
    () => toLibsqlUrl("postgresql://u:secret@h/db", home),
    (error: Error) => !error.message.includes("secret"),
  );
});

Deno.test("resolveEnvHubSettings: --db > ROCK_ENVHUB_DB_URL > ~/.rock/rock_envs.db", () => {
  const env = { HOME: "/home/rock" };
  assert.deepEqual(resolveEnvHubSettings({}, env), {
    dbUrl: "file:/home/rock/.rock/rock_envs.db",
    dbAuthToken: undefined,
    defaultImage: "python:3.11",
  });
  const fromEnv = resolveEnvHubSettings({}, {
    ...env,
    ROCK_ENVHUB_DB_URL: "sqlite:////srv/envs.db",
    ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE: "python:3.12",
    ROCK_ENVHUB_DB_AUTH_TOKEN: "t",
  });
  assert.deepEqual(fromEnv, {
    dbUrl: "file:/srv/envs.db",
    dbAuthToken: "t",
    defaultImage: "python:3.12",
  });
  assert.equal(
    resolveEnvHubSettings({ db: "file:/flag.db" }, { ...env, ROCK_ENVHUB_DB_URL: "file:/e.db" })
      .dbUrl,
    "file:/flag.db",
  );
  // Set but empty: no default row, as in ROCK.
  assert.equal(
    resolveEnvHubSettings({}, { ...env, ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE: "" }).defaultImage,
    "",
  );
});

Deno.test("resolveEnvHubUrl: --base-url > ROCK_ENVHUB_BASE_URL > http://localhost:8081", () => {
  assert.equal(resolveEnvHubUrl({}, {}), "http://localhost:8081");
  assert.equal(resolveEnvHubUrl({}, { ROCK_ENVHUB_BASE_URL: "http://hub:9/" }), "http://hub:9");
  assert.equal(
    resolveEnvHubUrl({ baseUrl: "https://a" }, { ROCK_ENVHUB_BASE_URL: "http://b" }),
    "https://a",
  );
  assert.throws(
    () => resolveEnvHubUrl({}, { ROCK_ENVHUB_BASE_URL: "hub:8081" }),
    /Invalid EnvHub URL "hub:8081" from \$ROCK_ENVHUB_BASE_URL/,
  );
});
