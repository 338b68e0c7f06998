import type { Database, Statement } from "better-sqlite3";
import { attemptsExhausted, CANCELLED_ERROR_TEXT, nextTurn, quotaExceeded } from "../../jobs/policy.js";
import {
  type ClientUsage,
  DEFAULT_JOB_RETENTION_MS,
  type JobCounts,
  type JobListFilter,
  type JobOutcome,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobStoreOptions,
  type NewJob,
} from "../../jobs/store.js";
import { canonicalize, type JsonObject } from "../../protocol/canonical.js";
import { type JobRow, jobFromRow } from "../job-row.js";
import { JobWatchers } from "../watchers.js";
import { openSqlite } from "./connection.js";
import { SqliteWriteBatch } from "./write-batch.js";

/** Options for {@link SqliteJobStore}. */
export interface SqliteJobStoreOptions extends JobStoreOptions {
  /** While someone waits on a job, how often to look for changes other processes made, ms. Default 50. */
  watchPollMs?: number;
}

// Schema version 2 adds version/turn/bytes and the per-client counters; 3 the trace context; `migrate` brings older files up.
const SCHEMA_VERSION = 3;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS smcp_jobs (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  tool TEXT NOT NULL,
  args TEXT NOT NULL,
  idempotency_key TEXT,
  state TEXT NOT NULL,
  progress TEXT,
  result TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker_id TEXT,
  lease_until INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  version INTEGER NOT NULL DEFAULT 1,
  turn INTEGER NOT NULL DEFAULT 1,
  bytes INTEGER NOT NULL DEFAULT 0,
  trace TEXT
);
CREATE TABLE IF NOT EXISTS smcp_offers (
  tool TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tool, worker_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS smcp_clients (
  client_id TEXT PRIMARY KEY,
  open INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  last_turn INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS smcp_serving (
  tool TEXT PRIMARY KEY,
  turn INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS smcp_jobs_idempotency ON smcp_jobs (client_id, tool, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS smcp_jobs_client ON smcp_jobs (client_id, created_at);
CREATE INDEX IF NOT EXISTS smcp_jobs_expiry ON smcp_jobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS smcp_jobs_fair ON smcp_jobs (turn, created_at) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS smcp_jobs_running ON smcp_jobs (lease_until) WHERE state = 'running';
`;

/** Brings a file written by an older smcp to the current schema (adds columns, rebuilds the counters). */
function migrate(db: Database): void {
  const columns = new Set((db.prepare("PRAGMA table_info(smcp_jobs)").all() as { name: string }[]).map((c) => c.name));
  if (columns.size > 0 && !columns.has("version")) {
    db.exec(`ALTER TABLE smcp_jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE smcp_jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE smcp_jobs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
      UPDATE smcp_jobs SET bytes = length(args) + coalesce(length(result), 0);
      DROP INDEX IF EXISTS smcp_jobs_state;`);
  }
  if (columns.size > 0 && !columns.has("trace")) db.exec("ALTER TABLE smcp_jobs ADD COLUMN trace TEXT;");
  db.exec(SCHEMA);
  if ((db.pragma("user_version", { simple: true }) as number) < SCHEMA_VERSION) {
    db.exec(`DELETE FROM smcp_clients;
      INSERT INTO smcp_clients (client_id, open, bytes, last_turn)
        SELECT client_id, sum(state IN ('queued', 'running')), sum(bytes), 0 FROM smcp_jobs GROUP BY client_id;
      PRAGMA user_version = ${SCHEMA_VERSION};`);
  }
}

const OPEN = "state IN ('queued', 'running')";
const LIVE = "(expires_at IS NULL OR expires_at > @now)";

function prepareStatements(db: Database) {
  const prepare = (sql: string) => db.prepare(sql);
  return {
    get: prepare(`SELECT * FROM smcp_jobs WHERE id = @id AND ${LIVE}`),
    version: prepare(`SELECT version FROM smcp_jobs WHERE id = @id AND ${LIVE}`),
    versions: prepare("SELECT id, version FROM smcp_jobs WHERE id IN (SELECT value FROM json_each(@ids))"),
    byKey: prepare(`SELECT * FROM smcp_jobs WHERE client_id = @clientId AND tool = @tool AND idempotency_key = @key AND ${LIVE}`),
    client: prepare("SELECT open, bytes, last_turn FROM smcp_clients WHERE client_id = @clientId"),
    // The turn being served now for a tool: the highest of its running jobs (their partial index), 1 when none runs.
    // The turn the tool serves: its job started last (the fair-turn rule of jobs/policy.ts).
    serving: prepare("SELECT turn FROM smcp_serving WHERE tool = @tool"),
    served: prepare(`INSERT INTO smcp_serving (tool, turn) VALUES (@tool, @turn)
      ON CONFLICT (tool) DO UPDATE SET turn = excluded.turn`),
    insert:
      prepare(`INSERT INTO smcp_jobs (id, client_id, tool, args, idempotency_key, state, created_at, updated_at, turn, bytes, trace)
      VALUES (@id, @clientId, @tool, @args, @key, 'queued', @now, @now, @turn, @bytes, @trace) RETURNING *`),
    opened: prepare(`INSERT INTO smcp_clients (client_id, open, bytes, last_turn) VALUES (@clientId, 1, @bytes, @turn)
      ON CONFLICT (client_id) DO UPDATE SET open = open + 1, bytes = bytes + @bytes, last_turn = @turn`),
    closed: prepare("UPDATE smcp_clients SET open = open - 1, bytes = bytes + @bytes WHERE client_id = @clientId"),
    released: prepare("UPDATE smcp_clients SET bytes = bytes - @bytes WHERE client_id = @clientId"),
    forget: prepare("DELETE FROM smcp_clients WHERE client_id = @clientId AND open <= 0 AND bytes <= 0"),
    start: prepare(`UPDATE smcp_jobs SET state = 'running', attempts = attempts + 1, worker_id = @workerId,
      lease_until = @leaseUntil, updated_at = @now WHERE id = @id AND state = 'queued' RETURNING *`),
    claim: prepare(`UPDATE smcp_jobs SET state = 'running', attempts = attempts + 1, worker_id = @workerId,
      lease_until = @leaseUntil, updated_at = @now
      WHERE id = (SELECT id FROM smcp_jobs WHERE state = 'queued'
        AND (@tools IS NULL OR tool IN (SELECT value FROM json_each(@tools))) ORDER BY turn, created_at, rowid LIMIT 1)
      AND state = 'queued' RETURNING *`),
    progress: prepare(`UPDATE smcp_jobs SET progress = @progress, updated_at = @now, version = version + 1
      WHERE id = @id AND state = 'running'`),
    finish: prepare(`UPDATE smcp_jobs SET state = @state, result = @result, error = @error, worker_id = NULL, lease_until = NULL,
      updated_at = @now, expires_at = @expiresAt, version = version + 1, bytes = bytes + @resultBytes
      WHERE id = @id AND ${OPEN} RETURNING client_id`),
    renew: prepare(
      "UPDATE smcp_jobs SET lease_until = @leaseUntil WHERE id = @id AND state = 'running' AND worker_id = @workerId",
    ),
    stale: prepare("SELECT * FROM smcp_jobs WHERE state = 'running' AND lease_until < @now ORDER BY lease_until LIMIT @limit"),
    running: prepare("SELECT * FROM smcp_jobs WHERE id = @id AND state = 'running'"),
    requeue: prepare(`UPDATE smcp_jobs SET state = 'queued', worker_id = NULL, lease_until = NULL, updated_at = @now
      WHERE id = @id AND state = 'running'`),
    list: prepare(`SELECT * FROM smcp_jobs WHERE (@clientId IS NULL OR client_id = @clientId) AND (@state IS NULL OR state = @state)
      AND (@tool IS NULL OR tool = @tool) AND ${LIVE} ORDER BY created_at DESC, rowid DESC LIMIT @limit`),
    // Live jobs only: one past its retention is gone for every reader, swept or not (as in every store).
    counts: prepare(`SELECT state, count(*) AS n FROM smcp_jobs WHERE ${LIVE} GROUP BY state`),
    announce: prepare(`INSERT INTO smcp_offers (tool, worker_id, expires_at) VALUES (@tool, @workerId, @expiresAt)
      ON CONFLICT (tool, worker_id) DO UPDATE SET expires_at = excluded.expires_at`),
    forgetOffers: prepare("DELETE FROM smcp_offers WHERE expires_at <= @now"),
    offered: prepare("SELECT 1 FROM smcp_offers WHERE tool = @tool AND expires_at > @now LIMIT 1"),
    sweep: prepare(
      "DELETE FROM smcp_jobs WHERE id IN (SELECT id FROM smcp_jobs WHERE expires_at <= @now LIMIT @limit) RETURNING id, client_id, bytes",
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

const CANCELLED = CANCELLED_ERROR_TEXT;
// Rows deleted per sweep transaction: a sweep never holds the write lock for long.
const SWEEP_BATCH = 500;

/**
 * Jobs in a SQLite file (WAL): they survive a restart and are shared by the
 * processes on one host. Writes use `synchronous = FULL`, so a job is on disk
 * before the server answers `accepted`; the writes of one event-loop turn
 * share one commit (group commit: one fsync per turn, not per write). JSON columns hold canonical text,
 * so integers beyond 2^53 stay exact. Queued jobs are claimed lowest turn
 * first (fair across clients); per-client counters make quotas one indexed read.
 */
export class SqliteJobStore implements JobStore {
  readonly #db: Database;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #sql: Statements;
  readonly #createTx: (input: NewJob, now: number) => { job: JobRecord; created: boolean };
  readonly #finishTx: (params: Record<string, unknown>) => boolean;
  readonly #requeueTx: (id: string, maxAttempts: number, staleBefore: number | undefined, now: number) => JobState | undefined;
  readonly #heartbeatTx: (workerId: string, ids: readonly string[], leaseUntil: number) => string[];
  readonly #sweepTx: (now: number) => string[];
  readonly #announceTx: (workerId: string, tools: readonly string[], expiresAt: number, now: number) => void;
  readonly #watchers = new JobWatchers();
  readonly #writes: SqliteWriteBatch;
  readonly #watched = new Map<string, number>();
  readonly #watchPollMs: number;
  #watchTimer: NodeJS.Timeout | undefined;

  constructor(path: string, options: SqliteJobStoreOptions = {}) {
    this.#db = openSqlite(path, { synchronous: "FULL" });
    this.#db.transaction(() => migrate(this.#db)).immediate();
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#now = options.now ?? Date.now;
    this.#watchPollMs = options.watchPollMs ?? 50;
    this.#sql = prepareStatements(this.#db);
    this.#writes = new SqliteWriteBatch(this.#db);
    const sql = this.#sql;
    const one = (statement: Statement, params: object) => statement.get(params) as JobRow | undefined;

    // Create and finish run inside a transaction of their caller's: the write batch's savepoint (whose batch
    // began IMMEDIATE, taking the write lock first, so two processes cannot both miss the idempotency key or a
    // quota), or the requeue's transaction. A transaction of their own would only add a second savepoint.
    this.#createTx = (input: NewJob, now: number) => {
      const key = input.idempotencyKey ?? null;
      if (key !== null) {
        const existing = one(sql.byKey, { clientId: input.clientId, tool: input.tool, key, now });
        if (existing) return { job: jobFromRow(existing), created: false };
      }
      const client = sql.client.get({ clientId: input.clientId }) as
        | { open: number; bytes: number; last_turn: number }
        | undefined;
      const args = canonicalize(input.args);
      if (input.maxOpenJobs !== undefined && (client?.open ?? 0) >= input.maxOpenJobs) throw quotaExceeded("open_jobs");
      if (input.maxStoredBytes !== undefined && (client?.bytes ?? 0) + args.length > input.maxStoredBytes) {
        throw quotaExceeded("stored_bytes");
      }
      const serving = (sql.serving.get({ tool: input.tool }) as { turn: number } | undefined)?.turn;
      const turn = nextTurn({ open: client?.open ?? 0, lastTurn: client?.last_turn ?? 0 }, serving);
      const params = {
        id: input.id,
        clientId: input.clientId,
        tool: input.tool,
        args,
        key,
        now,
        turn,
        bytes: args.length,
        trace: input.trace ?? null,
      };
      const row = one(sql.insert, params) as JobRow;
      sql.opened.run(params);
      return { job: jobFromRow(row), created: true };
    };
    this.#finishTx = (params: Record<string, unknown>) => {
      const row = sql.finish.get(params) as { client_id: string } | undefined;
      if (!row) return false;
      sql.closed.run({ clientId: row.client_id, bytes: params.resultBytes });
      return true;
    };
    const finish = this.#finishTx;
    this.#requeueTx = this.#db.transaction((id: string, maxAttempts: number, staleBefore: number | undefined, now: number) => {
      const row = one(sql.running, { id });
      if (!row) return undefined;
      if (staleBefore !== undefined && !(row.lease_until !== null && row.lease_until < staleBefore)) return undefined;
      if (row.attempts >= maxAttempts) {
        const error = canonicalize(attemptsExhausted(row.attempts));
        finish({ id, state: "error", result: null, error, now, expiresAt: now + this.#retentionMs, resultBytes: error.length });
        return "error";
      }
      sql.requeue.run({ id, now });
      return "queued";
    });
    this.#heartbeatTx = this.#db.transaction((workerId: string, ids: readonly string[], leaseUntil: number) =>
      ids.filter((id) => sql.renew.run({ id, workerId, leaseUntil }).changes === 0),
    );
    this.#announceTx = this.#db.transaction((workerId: string, tools: readonly string[], expiresAt: number, now: number) => {
      sql.forgetOffers.run({ now });
      for (const tool of tools) sql.announce.run({ tool, workerId, expiresAt });
    });
    this.#sweepTx = this.#db.transaction((now: number) => {
      const rows = sql.sweep.all({ now, limit: SWEEP_BATCH }) as { id: string; client_id: string; bytes: number }[];
      for (const row of rows) {
        sql.released.run({ clientId: row.client_id, bytes: row.bytes });
        sql.forget.run({ clientId: row.client_id });
      }
      return rows.map((row) => row.id);
    });
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const now = this.#now();
    return this.#writes.run(() => this.#createTx(input, now));
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.#sql.get.get({ id, now: this.#now() }) as JobRow | undefined;
    return row && jobFromRow(row);
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const params = { id, workerId, leaseUntil, now: this.#now() };
    const row = await this.#writes.run(() => this.#started(this.#sql.start.get(params) as JobRow | undefined));
    return row && jobFromRow(row);
  }

  // The tool now serves this job's turn (jobs/policy.ts's fair-turn rule reads it at create); in the start's own
  // transaction, so the two commit together.
  #started(row: JobRow | undefined): JobRow | undefined {
    if (row) this.#sql.served.run({ tool: row.tool, turn: row.turn });
    return row;
  }

  async claim(workerId: string, leaseUntil: number, tools?: readonly string[]): Promise<JobRecord | undefined> {
    const params = { workerId, leaseUntil, now: this.#now(), tools: tools ? JSON.stringify(tools) : null };
    const row = await this.#writes.run(() => this.#started(this.#sql.claim.get(params) as JobRow | undefined));
    return row && jobFromRow(row);
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    return this.#heartbeatTx(workerId, ids, leaseUntil);
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    return (this.#sql.stale.all({ now, limit }) as JobRow[]).map(jobFromRow);
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    const params = { id, progress: canonicalize(progress), now: this.#now() };
    const changed = await this.#writes.run(() => this.#sql.progress.run(params).changes === 1);
    if (changed) this.#watchers.notify(id);
    return changed;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const now = this.#now();
    const result = outcome.state === "done" ? canonicalize(outcome.result) : null;
    const error = outcome.state === "error" ? canonicalize(outcome.error) : null;
    const params = { id, state: outcome.state, result, error, now, expiresAt: now + this.#retentionMs };
    const finished = await this.#writes.run(() => this.#finishTx({ ...params, resultBytes: (result ?? error ?? "").length }));
    if (finished) this.#watchers.notify(id);
    return finished;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const now = this.#now();
    const params = { id, state: "cancelled", result: null, error: CANCELLED, now, expiresAt: now + this.#retentionMs };
    if (await this.#writes.run(() => this.#finishTx({ ...params, resultBytes: CANCELLED.length }))) this.#watchers.notify(id);
    return this.get(id);
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    const state = this.#requeueTx(id, maxAttempts, staleBefore, this.#now());
    if (state === "error") this.#watchers.notify(id);
    return state;
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const rows = this.#sql.list.all({
      clientId: filter.clientId ?? null,
      state: filter.state ?? null,
      tool: filter.tool ?? null,
      limit: filter.limit ?? -1,
      now: this.#now(),
    }) as JobRow[];
    return rows.map(jobFromRow);
  }

  async sweep(now = this.#now()): Promise<number> {
    let removed = 0;
    for (;;) {
      const ids = this.#sweepTx(now);
      for (const id of ids) this.#watchers.notify(id);
      removed += ids.length;
      if (ids.length < SWEEP_BATCH) return removed;
      // Let requests in between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async watch(id: string, version: number, signal: AbortSignal): Promise<void> {
    const row = this.#sql.version.get({ id, now: this.#now() }) as { version: number } | undefined;
    if (!row || row.version !== version) return;
    this.#watched.set(id, version);
    this.#watchTimer ??= setInterval(() => this.#checkWatched(), this.#watchPollMs);
    try {
      await this.#watchers.wait(id, signal);
    } finally {
      if (!this.#watchers.ids().includes(id)) this.#watched.delete(id);
      if (this.#watched.size === 0) {
        clearInterval(this.#watchTimer);
        this.#watchTimer = undefined;
      }
    }
  }

  async usage(clientId: string): Promise<ClientUsage> {
    const row = this.#sql.client.get({ clientId }) as { open: number; bytes: number } | undefined;
    return { open: row?.open ?? 0, bytes: row?.bytes ?? 0 };
  }

  async counts(): Promise<JobCounts> {
    const rows = this.#sql.counts.all({ now: this.#now() }) as { state: JobState; n: number }[];
    const counts = { queued: 0, running: 0, finished: 0 };
    for (const { state, n } of rows) {
      if (state === "queued") counts.queued += n;
      else if (state === "running") counts.running += n;
      else counts.finished += n;
    }
    return counts;
  }

  async announce(workerId: string, tools: readonly string[], ttlMs: number): Promise<void> {
    const now = this.#now();
    this.#announceTx(workerId, tools, now + ttlMs, now);
  }

  async isOffered(tool: string): Promise<boolean> {
    return this.#sql.offered.get({ tool, now: this.#now() }) !== undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
    if (!this.#db.open) return;
    this.#writes.drain();
    this.#db.close();
  }

  // Changes by other processes sharing the file: compare the versions of the jobs someone waits on.
  #checkWatched(): void {
    if (this.#watched.size === 0 || !this.#db.open) return;
    let rows: { id: string; version: number }[];
    try {
      rows = this.#sql.versions.all({ ids: JSON.stringify([...this.#watched.keys()]) }) as { id: string; version: number }[];
    } catch {
      return; // the file is busy or unreadable: the waiters' own timeouts end their waits
    }
    const present = new Set<string>();
    for (const row of rows) {
      present.add(row.id);
      if (this.#watched.get(row.id) !== row.version) this.#watchers.notify(row.id);
    }
    for (const id of this.#watched.keys()) if (!present.has(id)) this.#watchers.notify(id); // deleted
  }
}
