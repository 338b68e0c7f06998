import type { Database, Transaction } from "better-sqlite3";
import { canonicalize, type JsonObject, parseJson } from "../protocol/canonical.js";
import { openSqlite } from "../sqlite.js";
import {
  DEFAULT_JOB_RETENTION_MS,
  type JobError,
  type JobListFilter,
  type JobOutcome,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobStoreOptions,
  type NewJob,
} from "./store.js";

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
  expires_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS smcp_jobs_idempotency ON smcp_jobs (client_id, tool, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS smcp_jobs_state ON smcp_jobs (state, created_at);
CREATE INDEX IF NOT EXISTS smcp_jobs_client ON smcp_jobs (client_id, created_at);
CREATE INDEX IF NOT EXISTS smcp_jobs_expiry ON smcp_jobs (expires_at) WHERE expires_at IS NOT NULL;
`;

interface Row {
  id: string;
  client_id: string;
  tool: string;
  args: string;
  idempotency_key: string | null;
  state: JobState;
  progress: string | null;
  result: string | null;
  error: string | null;
  attempts: number;
  worker_id: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
}

const object = (text: string | null): JsonObject | null => (text === null ? null : (parseJson(text) as JsonObject));

function toRecord(row: Row): JobRecord {
  return {
    id: row.id,
    clientId: row.client_id,
    tool: row.tool,
    args: object(row.args) ?? {},
    idempotencyKey: row.idempotency_key,
    state: row.state,
    progress: object(row.progress),
    result: object(row.result),
    error: object(row.error) as JobError | null,
    attempts: row.attempts,
    workerId: row.worker_id,
    leaseUntil: row.lease_until,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
  };
}

function prepareStatements(db: Database) {
  const live = "(expires_at IS NULL OR expires_at > @now)";
  const prepare = (sql: string) => db.prepare(sql);
  return {
    get: prepare(`SELECT * FROM smcp_jobs WHERE id = @id AND ${live}`),
    byKey: prepare(`SELECT * FROM smcp_jobs WHERE client_id = @clientId AND tool = @tool AND idempotency_key = @key AND ${live}`),
    dropExpiredKey: prepare(
      "DELETE FROM smcp_jobs WHERE client_id = @clientId AND tool = @tool AND idempotency_key = @key AND expires_at <= @now",
    ),
    insert: prepare(`INSERT INTO smcp_jobs (id, client_id, tool, args, idempotency_key, state, created_at, updated_at)
      VALUES (@id, @clientId, @tool, @args, @key, 'queued', @now, @now)`),
    start: prepare(`UPDATE smcp_jobs SET state = 'running', attempts = attempts + 1, worker_id = @workerId,
      lease_until = @leaseUntil, updated_at = @now WHERE id = @id AND state = 'queued' RETURNING *`),
    claim: prepare(`UPDATE smcp_jobs SET state = 'running', attempts = attempts + 1, worker_id = @workerId,
      lease_until = @leaseUntil, updated_at = @now
      WHERE id = (SELECT id FROM smcp_jobs WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1) AND state = 'queued'
      RETURNING *`),
    progress: prepare("UPDATE smcp_jobs SET progress = @progress, updated_at = @now WHERE id = @id AND state = 'running'"),
    finish: prepare(`UPDATE smcp_jobs SET state = @state, result = @result, error = @error, worker_id = NULL, lease_until = NULL,
      updated_at = @now, expires_at = @expiresAt WHERE id = @id AND ${OPEN}`),
    renew: prepare(
      "UPDATE smcp_jobs SET lease_until = @leaseUntil WHERE id = @id AND state = 'running' AND worker_id = @workerId",
    ),
    stale: prepare("SELECT * FROM smcp_jobs WHERE state = 'running' AND lease_until < @now ORDER BY lease_until LIMIT @limit"),
    running: prepare("SELECT * FROM smcp_jobs WHERE id = @id AND state = 'running'"),
    requeue: prepare(
      "UPDATE smcp_jobs SET state = 'queued', worker_id = NULL, lease_until = NULL, updated_at = @now WHERE id = @id AND state = 'running'",
    ),
    list: prepare(`SELECT * FROM smcp_jobs WHERE (@clientId IS NULL OR client_id = @clientId) AND (@state IS NULL OR state = @state)
      AND ${live} ORDER BY created_at DESC, rowid DESC LIMIT @limit`),
    sweep: prepare("DELETE FROM smcp_jobs WHERE expires_at <= @now"),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

const CANCELLED = canonicalize({ code: "cancelled", message: "cancelled" });
const OPEN = "state IN ('queued', 'running')";

/**
 * Jobs in a SQLite file (WAL): they survive a restart and are shared by the
 * processes on one host. Writes use `synchronous = FULL`, so a job is on disk
 * before the server answers `accepted`. JSON columns hold canonical text,
 * so integers beyond 2^53 stay exact.
 */
export class SqliteJobStore implements JobStore {
  readonly #db: Database;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #sql: Statements;
  readonly #createTx: Transaction<(input: NewJob, now: number) => { job: JobRecord; created: boolean }>;
  readonly #requeueTx: Transaction<
    (id: string, maxAttempts: number, staleBefore: number | undefined, now: number) => JobState | undefined
  >;
  readonly #heartbeatTx: (workerId: string, ids: readonly string[], leaseUntil: number) => string[];

  constructor(path: string, options: JobStoreOptions = {}) {
    this.#db = openSqlite(path, { synchronous: "FULL" });
    this.#db.exec(SCHEMA);
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#now = options.now ?? Date.now;
    this.#sql = prepareStatements(this.#db);
    const sql = this.#sql;
    const run = (name: keyof Statements, params: object) => sql[name].run(params);
    const one = (name: keyof Statements, params: object) => sql[name].get(params) as Row | undefined;

    this.#createTx = this.#db.transaction((input: NewJob, now: number) => {
      const key = input.idempotencyKey ?? null;
      if (key !== null) {
        const keyParams = { clientId: input.clientId, tool: input.tool, key, now };
        const existing = one("byKey", keyParams);
        if (existing) return { job: toRecord(existing), created: false };
        run("dropExpiredKey", keyParams);
      }
      run("insert", { id: input.id, clientId: input.clientId, tool: input.tool, args: canonicalize(input.args), key, now });
      return { job: toRecord(one("get", { id: input.id, now }) as Row), created: true };
    });
    this.#requeueTx = this.#db.transaction((id: string, maxAttempts: number, staleBefore: number | undefined, now: number) => {
      const row = one("running", { id });
      if (!row) return undefined;
      if (staleBefore !== undefined && !(row.lease_until !== null && row.lease_until < staleBefore)) return undefined;
      if (row.attempts >= maxAttempts) {
        const error = canonicalize({
          code: "tool_failed",
          message: `the worker stopped during each of ${row.attempts} attempts`,
        });
        run("finish", { id, state: "error", result: null, error, now, expiresAt: now + this.#retentionMs });
        return "error";
      }
      run("requeue", { id, now });
      return "queued";
    });
    this.#heartbeatTx = this.#db.transaction((workerId: string, ids: readonly string[], leaseUntil: number) =>
      ids.filter((id) => run("renew", { id, workerId, leaseUntil }).changes === 0),
    );
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    // IMMEDIATE: take the write lock first, so two processes cannot both miss the idempotency key.
    return this.#createTx.immediate(input, this.#now());
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.#sql.get.get({ id, now: this.#now() }) as Row | undefined;
    return row && toRecord(row);
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const row = this.#sql.start.get({ id, workerId, leaseUntil, now: this.#now() }) as Row | undefined;
    return row && toRecord(row);
  }

  async claim(workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const row = this.#sql.claim.get({ workerId, leaseUntil, now: this.#now() }) as Row | undefined;
    return row && toRecord(row);
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    return this.#heartbeatTx(workerId, ids, leaseUntil);
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    return (this.#sql.stale.all({ now, limit }) as Row[]).map(toRecord);
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    return this.#sql.progress.run({ id, progress: canonicalize(progress), now: this.#now() }).changes === 1;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const now = this.#now();
    const params =
      outcome.state === "done"
        ? { id, state: "done", result: canonicalize(outcome.result), error: null }
        : { id, state: "error", result: null, error: canonicalize(outcome.error) };
    return this.#sql.finish.run({ ...params, now, expiresAt: now + this.#retentionMs }).changes === 1;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const now = this.#now();
    this.#sql.finish.run({ id, state: "cancelled", result: null, error: CANCELLED, now, expiresAt: now + this.#retentionMs });
    return this.get(id);
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    return this.#requeueTx.immediate(id, maxAttempts, staleBefore, this.#now());
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const rows = this.#sql.list.all({
      clientId: filter.clientId ?? null,
      state: filter.state ?? null,
      limit: filter.limit ?? -1,
      now: this.#now(),
    }) as Row[];
    return rows.map(toRecord);
  }

  async sweep(now = this.#now()): Promise<number> {
    return this.#sql.sweep.run({ now }).changes;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
