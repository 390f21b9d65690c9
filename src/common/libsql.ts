/**
 * Opening a libsql database the way every rock store does: an embedded file (WAL, synchronous
 * NORMAL, a 5 s busy timeout, so several processes may share it) or a remote libsql server, with
 * plain SQL migrations run once each. Credentials never reach a message.
 */
import { type Client, createClient } from "@libsql/client";
import { errorMessage, RockError } from "./errors.ts";

/** How to open one store's database. */
export interface OpenLibsqlOptions {
  /** Token of a remote libsql server. */
  authToken?: string | undefined;
  /** The database in messages: `the state database`. */
  what: string;
  /**
   * Ordered migrations: each runs once, in a transaction, recorded in `versionTable` (one per
   * store, so stores may share a server).
   */
  migrations: readonly (readonly string[])[];
  versionTable: string;
}

/**
 * Opens `url` (`file:/path/x.db`, `libsql://...`, `http://...`) and runs the migrations not run yet.
 * @throws {RockError} naming the database and its URL without credentials, when it cannot be
 * opened or migrated.
 */
export async function openLibsql(url: string, options: OpenLibsqlOptions): Promise<Client> {
  let db: Client | undefined;
  try {
    db = createClient({
      url,
      ...(options.authToken === undefined ? {} : { authToken: options.authToken }),
    });
    if (url.startsWith("file:")) {
      await db.execute("PRAGMA journal_mode = WAL");
      await db.execute("PRAGMA synchronous = NORMAL");
      await db.execute("PRAGMA busy_timeout = 5000");
    }
    await migrate(db, options.migrations, options.versionTable);
    return db;
  } catch (error) {
    db?.close();
    throw new RockError(
      `Cannot open ${options.what} "${redactUrl(url)}": ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

async function migrate(
  db: Client,
  migrations: readonly (readonly string[])[],
  versionTable: string,
): Promise<void> {
  await db.execute(`CREATE TABLE IF NOT EXISTS ${versionTable} (version INTEGER NOT NULL)`);
  const current = Number(
    (await db.execute(`SELECT MAX(version) AS v FROM ${versionTable}`)).rows[0]?.v ?? 0,
  );
  for (const [index, statements] of migrations.entries()) {
    const version = index + 1;
    if (version <= current) continue;
    await db.batch([
      ...statements,
      { sql: `INSERT INTO ${versionTable} (version) VALUES (?)`, args: [version] },
    ], "write");
  }
}

/** `url` without credentials (user info, an authToken parameter), for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&]authToken=)[^&]*/i, "$1***");
}
