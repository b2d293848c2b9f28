-- Tasks, their event logs and pending signals.
CREATE TABLE tasks (
  id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, unlike a plain rowid
  app              TEXT    NOT NULL,
  type             TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('pending','running','completed','failed','cancelled','timed_out')),
  input            TEXT    NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  timeout_ms       INTEGER,
  run_at           INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  completed_at     INTEGER,
  final_value      TEXT,
  error            TEXT,
  cancel_reason    TEXT,
  cancel_requested TEXT,
  last_seq         INTEGER NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_epoch      INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  idempotency_key  TEXT
);
CREATE INDEX tasks_runnable ON tasks (run_at, id) WHERE status = 'pending';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_kind ON tasks (app, type, id);
CREATE INDEX tasks_status ON tasks (status, id);
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (app, type, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE events (
  task_id INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  type    TEXT    NOT NULL,
  data    TEXT    NOT NULL,
  at      INTEGER NOT NULL,
  PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

CREATE TABLE signals (
  id         INTEGER PRIMARY KEY,
  task_id    INTEGER NOT NULL,
  name       TEXT    NOT NULL,
  payload    TEXT    NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX signals_by_task ON signals (task_id, name, id);
