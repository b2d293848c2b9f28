/**
 * The store's statements, built once per schema. Every comparison with "now" uses the database's
 * clock (`now()`), never a process's. Every run-owned write names the lease epoch in its WHERE
 * clause, so under READ COMMITTED a write that waited for a takeover's row lock re-checks the new
 * epoch and matches nothing.
 */

const TERMINAL = "('completed','failed','cancelled','timed_out')";

/** A timestamptz column as milliseconds since the epoch (float8, so node-postgres returns a number). */
const ms = (column: string): string => `floor(extract(epoch from ${column}) * 1000)::float8`;

/**
 * A task's last stored seq. Appends do not write the `tasks` row (see appendMany): while a task
 * runs, its log's end is the events index's. Every statement that moves a task out of running
 * writes `last_seq` with the seq of the event it wrote, so for other statuses the column is exact.
 */
function lastSeq(s: string, alias: string): string {
  return `CASE WHEN ${alias}status = 'running' THEN GREATEST(${alias}last_seq, (SELECT max(e.seq) FROM ${s}.events e WHERE e.task_id = ${alias}id)) ELSE ${alias}last_seq END`;
}

/** The task columns; `live`: `last_seq` as lastSeq() reads it (a statement that may return a running task it did not just claim). */
function taskColumns(s: string, alias: string, live: boolean): string {
  const c = (name: string): string => `${alias}${name}`;
  return [
    'id', 'app', 'type', 'status', 'input', 'attempt', 'timeout_ms', 'final_value', 'error', 'cancel_reason',
    live ? `${lastSeq(s, alias)} AS last_seq` : 'last_seq', 'first_seq', 'idempotency_key', 'lease_epoch',
  ].map((n) => (n.includes(' ') ? n : c(n))).join(', ') + ', ' + ['created_at', 'started_at', 'finished_at', 'completed_at'].map((n) => `${ms(c(n))} AS ${n}`).join(', ');
}

export type Statements = ReturnType<typeof statements>;

export function statements(schema: string) {
  const s = `"${schema}"`;
  const cols = taskColumns(s, '', false);
  const live = taskColumns(s, 't.', true);
  const claimed = taskColumns(s, 't.', false);
  const kinds = "(app || '/' || type) = ANY($1::text[])";
  return {
    insertTask: `INSERT INTO ${s}.tasks (app, type, status, input, timeout_ms, run_at, idempotency_key)
      VALUES ($1, $2, 'pending', $3, $4, COALESCE(to_timestamp($5::float8 / 1000), now()), $6)
      ON CONFLICT (app, type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING ${cols}`,
    // Group commit of creates without a key: one tick's creates in one statement. Identities are
    // drawn in the SELECT's order, so the rows sorted by id are the inputs in order.
    insertTasks: `INSERT INTO ${s}.tasks (app, type, status, input, timeout_ms, run_at)
      SELECT b.app, b.type, 'pending', b.input, b.timeout_ms, COALESCE(to_timestamp(b.run_at / 1000), now())
      FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::float8[]) WITH ORDINALITY AS b(app, type, input, timeout_ms, run_at, n)
      ORDER BY b.n
      RETURNING ${cols}`,
    byIdempotencyKey: `SELECT ${live} FROM ${s}.tasks t WHERE t.app = $1 AND t.type = $2 AND t.idempotency_key = $3`,
    getTask: `SELECT ${live} FROM ${s}.tasks t WHERE t.id = $1`,
    listTasks: (where: string) => `SELECT ${live} FROM ${s}.tasks t ${where} ORDER BY t.id DESC LIMIT $1`,
    // graphile-worker's and pg-boss's claim: lock the due rows nobody else has locked, over the
    // partial index of pending rows, and move them to running under a new epoch in one statement.
    claim: `WITH c AS (
        SELECT id FROM ${s}.tasks
        WHERE status = 'pending' AND run_at <= now() AND ${kinds}
        ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
      UPDATE ${s}.tasks t SET status = 'running', attempt = t.attempt + 1, lease_epoch = t.lease_epoch + 1, lease_owner = $3,
        lease_expires_at = now() + $4 * interval '1 millisecond', started_at = now()
      FROM c WHERE t.id = c.id RETURNING ${claimed}`,
    renew: `WITH r AS (
        UPDATE ${s}.tasks t SET lease_expires_at = now() + $4 * interval '1 millisecond'
        FROM unnest($1::bigint[], $2::int[]) AS b(id, epoch)
        WHERE t.id = b.id AND t.lease_epoch = b.epoch AND t.status = 'running' AND t.lease_owner = $3
        RETURNING t.id, t.cancel_requested)
      SELECT r.id, r.cancel_requested, (SELECT array_agg(DISTINCT g.name) FROM ${s}.signals g WHERE g.task_id = r.id) AS signals FROM r`,
    release: `UPDATE ${s}.tasks t SET status = 'pending', attempt = t.attempt - 1, run_at = now(), lease_owner = NULL, lease_expires_at = NULL
      FROM unnest($1::bigint[], $2::int[]) AS b(id, epoch)
      WHERE t.id = b.id AND t.lease_epoch = b.epoch AND t.status = 'running'`,
    // Group commit, one task. The fence reads the task row and never writes it: the events go in
    // only if the epoch is ours and the task is running. The store checks that the batch follows
    // on from the log (it knows each run's last stored seq). A takeover's snapshot can be newer
    // than this statement's, but every takeover writes an event at the log's next seq (recover)
    // before anyone else may append, and a late batch of the old owner starts at that seq: the
    // primary key fails whichever of the two commits second (23505).
    appendOne: `WITH ok AS (SELECT t.id FROM ${s}.tasks t WHERE t.id = $1 AND t.lease_epoch = $2 AND t.status = 'running')
      INSERT INTO ${s}.events (task_id, seq, type, data, at)
      SELECT ok.id, e.seq, e.type, e.data, e.at FROM ok, unnest($3::int[], $4::text[], $5::text[], $6::bigint[]) AS e(seq, type, data, at)`,
    // Group commit, many tasks: the same in one statement over unnest arrays (fixed text, so it
    // is prepared once whatever the batch's size). The events' data come as one JSON array ($6):
    // JSON texts go in one without escaping, where a text[] literal needs every quote of every
    // event escaped, and a `json` value's elements are exact slices of its text. OFFSET 0 keeps
    // each task's check a primary-key lookup: flattened, the generic plan (which guesses 10 rows
    // for an unnest) rescans the array once per running task.
    appendMany: `WITH ok AS (
        SELECT b.id FROM unnest($1::bigint[], $2::int[]) AS b(id, epoch),
          LATERAL (SELECT t.lease_epoch, t.status FROM ${s}.tasks t WHERE t.id = b.id OFFSET 0) t
        WHERE t.lease_epoch = b.epoch AND t.status = 'running'),
      ins AS (
        INSERT INTO ${s}.events (task_id, seq, type, data, at)
        SELECT e.task_id, e.seq, e.type, e.data::text, e.at
        FROM ROWS FROM (unnest($3::bigint[]), unnest($4::int[]), unnest($5::text[]), json_array_elements($6::json), unnest($7::bigint[]))
          AS e(task_id, seq, type, data, at)
        WHERE e.task_id IN (SELECT id FROM ok))
      SELECT array(SELECT id FROM ok) AS accepted`,
    fence: `SELECT t.id, t.status, t.lease_epoch, ${lastSeq(s, 't.')} AS last_seq, t.cancel_requested FROM ${s}.tasks t WHERE t.id = ANY($1::bigint[])`,
    // The terminal events and statuses of one tick's finished runs in one statement (one
    // transaction); retention in it too. A run that no longer matches (fenced, or a cancel it
    // must yield to) returns no row. The terminal event follows the log's end (x.last: appends
    // leave last_seq behind, see lastSeq()).
    finish: `WITH b AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
          $8::text[], $9::int[], $10::boolean[], $11::bigint[])
        AS b(id, epoch, status, final_value, error, cancel_reason, type, data, keep, yields, at)),
      ok AS (
        UPDATE ${s}.tasks t SET status = b.status, finished_at = now(), completed_at = CASE WHEN b.status = 'completed' THEN now() END,
          final_value = b.final_value, error = b.error, cancel_reason = b.cancel_reason, last_seq = GREATEST(t.last_seq, x.last) + 1,
          first_seq = CASE WHEN b.keep IS NULL THEN t.first_seq ELSE GREATEST(t.first_seq, GREATEST(t.last_seq, x.last) + 2 - b.keep) END,
          lease_owner = NULL, lease_expires_at = NULL
        FROM b, LATERAL (SELECT max(e.seq) AS last FROM ${s}.events e WHERE e.task_id = b.id) x WHERE t.id = b.id AND t.lease_epoch = b.epoch AND t.status = 'running' AND (NOT b.yields OR t.cancel_requested IS NULL)
        RETURNING t.id, t.last_seq, t.first_seq, b.type, b.data, b.at),
      ins AS (INSERT INTO ${s}.events (task_id, seq, type, data, at) SELECT id, last_seq, type, data, at FROM ok),
      del AS (DELETE FROM ${s}.events d USING ok WHERE d.task_id = ok.id AND d.seq < ok.first_seq)
      SELECT id, last_seq FROM ok`,
    requeue: `WITH ok AS (
        UPDATE ${s}.tasks SET status = 'pending', run_at = now() + $3 * interval '1 millisecond', error = COALESCE($4, error),
          last_seq = GREATEST(last_seq, (SELECT max(e.seq) FROM ${s}.events e WHERE e.task_id = $1)) + 1, lease_owner = NULL, lease_expires_at = NULL
        WHERE id = $1 AND lease_epoch = $2 AND status = 'running' AND cancel_requested IS NULL
        RETURNING id, last_seq),
      ins AS (INSERT INTO ${s}.events (task_id, seq, type, data, at) SELECT id, last_seq, $5::text, $6::text, $7::bigint FROM ok)
      SELECT last_seq FROM ok`,
    eventAt: `SELECT task_id, seq, type, data, at FROM ${s}.events WHERE task_id = $1 AND seq = $2`,
    lockTask: `SELECT status, last_seq, error, cancel_requested, cancel_reason FROM ${s}.tasks WHERE id = $1 FOR UPDATE`,
    cancelPending: `UPDATE ${s}.tasks SET status = 'cancelled', finished_at = now(), cancel_reason = $2, last_seq = last_seq + 1,
      lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 RETURNING last_seq`,
    requestCancel: `UPDATE ${s}.tasks SET cancel_requested = COALESCE(cancel_requested, $2) WHERE id = $1`,
    insertEvent: `INSERT INTO ${s}.events (task_id, seq, type, data, at) VALUES ($1, $2, $3, $4, $5)`,
    expired: `SELECT id, cancel_requested FROM ${s}.tasks
      WHERE status = 'running' AND lease_expires_at < now() AND NOT (id = ANY($1::bigint[]))
      ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED`,
    // Recovery bumps the epoch: the dead owner is fenced even before anyone claims the task again.
    // Its event takes the log's next seq, which is where a late append of the dead owner starts:
    // the primary key refuses whichever of the two commits second.
    recover: `WITH b AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS b(id, status, type, data)),
      u AS (
        UPDATE ${s}.tasks t SET status = b.status, lease_epoch = t.lease_epoch + 1, last_seq = GREATEST(t.last_seq, x.last) + 1,
          lease_owner = NULL, lease_expires_at = NULL,
          run_at = CASE WHEN b.status = 'pending' THEN now() ELSE t.run_at END,
          finished_at = CASE WHEN b.status = 'cancelled' THEN now() END,
          cancel_reason = CASE WHEN b.status = 'cancelled' THEN t.cancel_requested ELSE t.cancel_reason END
        FROM b, LATERAL (SELECT max(e.seq) AS last FROM ${s}.events e WHERE e.task_id = b.id) x
        WHERE t.id = b.id RETURNING t.id, t.last_seq, b.type, b.data)
      INSERT INTO ${s}.events (task_id, seq, type, data, at) SELECT id, last_seq, type, data, $5::bigint FROM u
      RETURNING task_id, seq, type, data, at`,
    makeRunnable: `UPDATE ${s}.tasks SET run_at = now() WHERE id = $1 AND status = 'pending' AND run_at > now()`,
    // GREATEST ignores NULL: without the CASE, "nothing delayed" would read as "due now".
    nextRunDelay: `SELECT CASE WHEN min(run_at) IS NULL THEN NULL ELSE GREATEST(0, extract(epoch from min(run_at) - now()) * 1000) END::float8 AS ms
      FROM ${s}.tasks WHERE status = 'pending' AND run_at > now() AND ${kinds}`,
    // The page and the log's position in one statement, so one snapshot. The running byte sum
    // stops the page once maxBytes is reached (the row that crosses it is the last one).
    readEvents: `SELECT t.first_seq, ${lastSeq(s, 't.')} AS last_seq, t.status, e.seq, e.type, e.data, e.at
      FROM ${s}.tasks t LEFT JOIN LATERAL (
        SELECT w.seq, w.type, w.data, w.at FROM (
          SELECT seq, type, data, at, sum(octet_length(data)) OVER (ORDER BY seq) - octet_length(data) AS before
          FROM ${s}.events WHERE task_id = t.id AND seq > $2::bigint ORDER BY seq LIMIT $3) w
        WHERE w.before < $4) e ON true
      WHERE t.id = $1 ORDER BY e.seq`,
    positions: `SELECT t.id, t.first_seq, ${lastSeq(s, 't.')} AS last_seq, t.status FROM ${s}.tasks t WHERE t.id = ANY($1::bigint[])`,
    /** readEvents for many (task, afterSeq) reads in one statement (one snapshot); `i` is the read's place in the arrays. */
    readPages: `SELECT r.i, t.first_seq, ${lastSeq(s, 't.')} AS last_seq, t.status, e.seq, e.type, e.data, e.at
      FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS r(id, after_seq, i)
      JOIN ${s}.tasks t ON t.id = r.id
      LEFT JOIN LATERAL (
        SELECT w.seq, w.type, w.data, w.at FROM (
          SELECT seq, type, data, at, sum(octet_length(data)) OVER (ORDER BY seq) - octet_length(data) AS before
          FROM ${s}.events WHERE task_id = t.id AND seq > r.after_seq ORDER BY seq LIMIT $3) w
        WHERE w.before < $4) e ON true
      ORDER BY r.i, e.seq`,
    trim: `WITH t AS (UPDATE ${s}.tasks u SET first_seq = GREATEST(u.first_seq, ${lastSeq(s, 'u.')} - $2 + 1) WHERE u.id = $1 RETURNING u.first_seq),
      d AS (DELETE FROM ${s}.events WHERE task_id = $1 AND seq < (SELECT first_seq FROM t) RETURNING 1)
      SELECT count(*)::int AS deleted FROM d`,
    addSignal: `WITH t AS (SELECT status FROM ${s}.tasks WHERE id = $1 FOR SHARE),
      ins AS (INSERT INTO ${s}.signals (task_id, name, payload) SELECT $1::bigint, $2::text, $3::text FROM t WHERE t.status IN ('pending', 'running'))
      SELECT (SELECT status FROM t) AS status`,
    takeSignal: `DELETE FROM ${s}.signals WHERE id = (
        SELECT id FROM ${s}.signals WHERE task_id = $1 AND name = $2 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING payload`,
    countPrunable: `SELECT count(*)::int AS n FROM ${s}.tasks WHERE status IN ${TERMINAL} AND finished_at < to_timestamp($1::float8 / 1000)`,
    prune: `WITH old AS (DELETE FROM ${s}.tasks WHERE status IN ${TERMINAL} AND finished_at < to_timestamp($1::float8 / 1000) RETURNING id),
      e AS (DELETE FROM ${s}.events WHERE task_id IN (SELECT id FROM old)),
      g AS (DELETE FROM ${s}.signals WHERE task_id IN (SELECT id FROM old))
      SELECT count(*)::int AS n FROM old`,
  };
}
