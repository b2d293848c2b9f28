-- Tasks, their event logs and pending signals. Runs inside the migration's transaction with
-- search_path set to the store's schema, so names here are unqualified.
CREATE TABLE tasks (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  app              text    NOT NULL,
  type             text    NOT NULL,
  status           text    NOT NULL CHECK (status IN ('pending','running','completed','failed','cancelled','timed_out')),
  input            text    NOT NULL,              -- JSON as serialised once (byte-identical replay)
  attempt          integer NOT NULL DEFAULT 0,
  timeout_ms       integer,
  run_at           timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  completed_at     timestamptz,
  final_value      text,
  error            text,
  cancel_reason    text,
  cancel_requested text,
  last_seq         integer NOT NULL DEFAULT 0,    -- not indexed, so appends are HOT updates
  first_seq        integer NOT NULL DEFAULT 1,    -- retention: the lowest seq still stored
  lease_owner      text,
  lease_epoch      integer NOT NULL DEFAULT 0,
  lease_expires_at timestamptz,
  idempotency_key  text
) WITH (fillfactor = 80);                         -- room on the page for HOT versions of busy rows

CREATE INDEX tasks_runnable ON tasks (run_at, id) INCLUDE (app, type) WHERE status = 'pending';
CREATE INDEX tasks_leased   ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_kind     ON tasks (app, type, id DESC);
CREATE INDEX tasks_status   ON tasks (status, id DESC);
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_idempotency ON tasks (app, type, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- No foreign key to tasks on the hot path: the fenced UPDATE of the append already proves the
-- task exists and is ours; prune deletes a task's events with it.
CREATE TABLE events (
  task_id bigint  NOT NULL,
  seq     integer NOT NULL,
  type    text    NOT NULL,
  data    text    NOT NULL,                       -- the JSON object as sent
  at      bigint  NOT NULL,                       -- ms since the epoch, as the runtime stamped it
  PRIMARY KEY (task_id, seq)
);

CREATE TABLE signals (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id    bigint NOT NULL,
  name       text   NOT NULL,
  payload    text   NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signals_by_task ON signals (task_id, name, id);
