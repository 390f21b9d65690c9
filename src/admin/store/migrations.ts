/** The admin's schema: plain SQL, one list per version, never edited once released. */

/** Ordered migrations of the admin's database; each runs once, recorded in schema_version. */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE sandboxes (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      sandbox_id TEXT NOT NULL UNIQUE,
      state TEXT NOT NULL,
      user_id TEXT NOT NULL,
      experiment_id TEXT NOT NULL,
      namespace TEXT NOT NULL,
      cluster_name TEXT NOT NULL,
      image TEXT NOT NULL,
      backend TEXT NOT NULL,
      handle TEXT,
      host_ip TEXT,
      host_name TEXT,
      port_mapping TEXT NOT NULL,
      phases TEXT NOT NULL,
      cpus REAL NOT NULL,
      memory TEXT NOT NULL,
      auto_clear_minutes INTEGER NOT NULL,
      expire_at INTEGER NOT NULL,
      create_time INTEGER NOT NULL,
      start_time INTEGER,
      stop_time INTEGER,
      failure_reason TEXT
    )`,
    "CREATE INDEX sandboxes_state ON sandboxes (state)",
    "CREATE INDEX sandboxes_user ON sandboxes (user_id)",
    "CREATE INDEX sandboxes_experiment ON sandboxes (experiment_id)",
    "CREATE INDEX sandboxes_namespace ON sandboxes (namespace)",
    "CREATE INDEX sandboxes_image ON sandboxes (image)",
    "CREATE INDEX sandboxes_create_time ON sandboxes (create_time)",
    "CREATE INDEX sandboxes_expire ON sandboxes (state, expire_at)",
    `CREATE TABLE billing (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      sandbox_id TEXT NOT NULL,
      stop_time INTEGER NOT NULL,
      duration_seconds REAL NOT NULL,
      record TEXT NOT NULL
    )`,
    "CREATE INDEX billing_sandbox ON billing (sandbox_id)",
  ],
  ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
  [
    `CREATE TABLE scheduler_tasks (
      task_name TEXT PRIMARY KEY,
      task_class TEXT NOT NULL,
      interval_seconds REAL NOT NULL,
      status TEXT NOT NULL,
      runs INTEGER NOT NULL DEFAULT 0,
      failures INTEGER NOT NULL DEFAULT 0,
      last_run INTEGER,
      duration_ms REAL,
      error TEXT,
      result TEXT
    )`,
  ],
  [
    "ALTER TABLE sandboxes ADD COLUMN stop_reason TEXT",
    // Rows from before: a failed start kept its reason in failure_reason, and so did a stop by
    // the admin itself (expiry, reconcile); a stop without one was asked for.
    `UPDATE sandboxes SET stop_reason = CASE
      WHEN state = 'failed' THEN 'start failed: ' || COALESCE(failure_reason, 'no reason recorded')
      ELSE COALESCE(failure_reason, 'stop requested') END
    WHERE state IN ('stopped', 'failed')`,
  ],
  [
    // Several admins on one database: who placed each sandbox, and the leases (the leader's and
    // each admin's own, which says it is alive).
    "ALTER TABLE sandboxes ADD COLUMN admin_id TEXT",
    `CREATE TABLE leases (
      name TEXT PRIMARY KEY,
      holder TEXT NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      start_ticks INTEGER,
      expires_at INTEGER NOT NULL
    )`,
  ],
  // A lease set with timeout_seconds (E2B's shape): expire_at is then a deadline keep-alives do
  // not move. NULL: ROCK's expiry, auto_clear_minutes after the last keep-alive.
  ["ALTER TABLE sandboxes ADD COLUMN timeout_seconds REAL"],
  [
    // What class of end a stop or failure was (user, timeout, oom, infra, expired), set with
    // the reason; older rows have none. The pull policy a restart places again with, and when a
    // row was deleted (state `deleted`, kept).
    "ALTER TABLE sandboxes ADD COLUMN failure_kind TEXT",
    "ALTER TABLE sandboxes ADD COLUMN pull TEXT",
    "ALTER TABLE sandboxes ADD COLUMN delete_time INTEGER",
    // Pruning history by age reads stop times.
    "CREATE INDEX sandboxes_stop_time ON sandboxes (state, stop_time)",
  ],
];
