import { attemptsExhausted, CANCELLED_ERROR_TEXT, quotaExceeded } from "../../jobs/policy.js";
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
import { advisoryKey, DEFAULT_SCHEMA, type PostgresConnection, type Queryable, quoteIdent } from "./connection.js";

/** Options for {@link PostgresJobStore}. */
export interface PostgresJobStoreOptions extends JobStoreOptions {
  /** The schema the tables live in (see `migrate`). Default `smcp`. */
  schema?: string;
  /** Give up this store's hold on the connection at `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
}

/** The NOTIFY channel of a schema's job events. */
export const eventsChannel = (schema: string): string => `${schema}_events`;

/**
 * What the store NOTIFYs on its channel (payload `KIND:VALUE`): `v:ID` a
 * job's version changed (progress, the end, deleted), `c:ID` it was
 * cancelled (also a version change), `q:TOOL` a job of that tool was queued.
 */
export type JobEventKind = "v" | "c" | "q";

// Columns a JobRecord reads (not seq).
const COLUMNS =
  "id, client_id, tool, args, idempotency_key, state, progress, result, error, attempts, worker_id, lease_until, created_at, updated_at, expires_at, version, turn, bytes, trace";
const LIVE = "(expires_at IS NULL OR expires_at > $2)";
/** Whole ms, as the bigint columns hold times (an injected clock may have fractions). */
const ms = (time: number): number => (time >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : Math.floor(time));
// "No limit" for a quota the statement compares against.
const NO_LIMIT = Number.MAX_SAFE_INTEGER;
/** True for PostgreSQL's unique_violation. */
const isUniqueViolation = (error: unknown) => (error as { code?: string } | null)?.code === "23505";
// Jobs deleted per sweep transaction: a sweep holds its locks briefly.
const SWEEP_BATCH = 500;

/** The store's statements for one schema. Each is one round trip; the NOTIFYs they send go out when they commit. */
function statements(schema: string) {
  const s = quoteIdent(schema);
  // The turn the tool serves now is its job started last (jobs/policy.ts's fair-turn rule reads it at create).
  // Appended, not upserted: a row per tool updated by every claim would make one tool's claims wait for each
  // other's commits (fsync included); appends never wait.
  const served = (from: string) => `served AS (INSERT INTO ${s}.starts (tool, turn) SELECT tool, turn FROM ${from})`;
  const serving = `(SELECT turn FROM ${s}.starts WHERE tool = $3 ORDER BY seq DESC LIMIT 1)`;
  return {
    get: `SELECT ${COLUMNS} FROM ${s}.jobs WHERE id = $1 AND ${LIVE}`,
    version: `SELECT version FROM ${s}.jobs WHERE id = $1 AND ${LIVE}`,
    // The job an idempotency key names (the unique index: one at most), live or past its retention.
    byKey: `SELECT ${COLUMNS} FROM ${s}.jobs WHERE client_id = $1 AND tool = $2 AND idempotency_key = $3`,
    // A finished job lets go of its key once its retention passed (not swept yet), so a new job may take it.
    releaseKey: `UPDATE ${s}.jobs SET idempotency_key = NULL
      WHERE client_id = $1 AND tool = $2 AND idempotency_key = $3 AND expires_at <= $4`,
    // One statement: count the job against the client's quotas and insert it, or neither. ON CONFLICT DO
    // UPDATE locks the client's row and checks its WHERE on the row as it is then (not on the statement's
    // snapshot), so concurrent creates of one client never pass a quota together. The turn is
    // jobs/policy.ts's nextTurn: the client's last turn + 1 while it has open jobs (else 1), never below
    // the turn its tool serves. $9 and $10: the quotas (a huge number for none).
    create: `WITH counted AS (
        INSERT INTO ${s}.clients AS c (client_id, open, bytes, last_turn)
        SELECT $2, 1, $8, GREATEST(1, ${serving}) WHERE $8 <= $10::bigint
        ON CONFLICT (client_id) DO UPDATE SET open = c.open + 1, bytes = c.bytes + $8,
          last_turn = GREATEST(CASE WHEN c.open > 0 THEN c.last_turn + 1 ELSE 1 END, ${serving})
        WHERE c.open < $9::bigint AND c.bytes + $8 <= $10::bigint
        RETURNING last_turn),
      job AS (
        INSERT INTO ${s}.jobs (id, client_id, tool, args, idempotency_key, state, created_at, updated_at, turn, bytes, trace)
        SELECT $1, $2, $3, $4, $5, 'queued', $6, $6, last_turn, $8, $11 FROM counted RETURNING ${COLUMNS})
      SELECT job.*, pg_notify($7, 'q:' || job.tool) FROM job`,
    usageForRefusal: `SELECT open, bytes FROM ${s}.clients WHERE client_id = $1`,
    start: `WITH started AS (UPDATE ${s}.jobs SET state = 'running', attempts = attempts + 1, worker_id = $2,
        lease_until = $3, updated_at = $4 WHERE id = $1 AND state = 'queued' RETURNING ${COLUMNS}),
      ${served("started")}
      SELECT * FROM started`,
    // FOR UPDATE SKIP LOCKED: workers claiming at once each take a different job, none waits for another.
    claim: `WITH next AS (SELECT id FROM ${s}.jobs WHERE state = 'queued' AND ($4::text[] IS NULL OR tool = ANY($4))
        ORDER BY turn, created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED),
      started AS (UPDATE ${s}.jobs j SET state = 'running', attempts = attempts + 1, worker_id = $1, lease_until = $2,
        updated_at = $3 FROM next WHERE j.id = next.id AND j.state = 'queued' RETURNING ${COLUMNS.replace(/(\w+)/g, "j.$1")}),
      ${served("started")}
      SELECT * FROM started`,
    renew: `UPDATE ${s}.jobs SET lease_until = $3 WHERE id = ANY($1::text[]) AND state = 'running' AND worker_id = $2 RETURNING id`,
    stale: `SELECT ${COLUMNS} FROM ${s}.jobs WHERE state = 'running' AND lease_until < $1 ORDER BY lease_until LIMIT $2`,
    progress: `WITH changed AS (UPDATE ${s}.jobs SET progress = $2, updated_at = $3, version = version + 1
        WHERE id = $1 AND state = 'running' RETURNING id)
      SELECT pg_notify($4, 'v:' || id) FROM changed`,
    // Ends an open job once (a compare-and-set on the state), gives the client its open slot back and counts the outcome's bytes.
    finish: `WITH ended AS (UPDATE ${s}.jobs SET state = $2, result = $3, error = $4, worker_id = NULL, lease_until = NULL,
        updated_at = $5, expires_at = $6, version = version + 1, bytes = bytes + $7
        WHERE id = $1 AND state IN ('queued', 'running') RETURNING ${COLUMNS}),
      counted AS (UPDATE ${s}.clients SET open = open - 1, bytes = bytes + $7 WHERE client_id IN (SELECT client_id FROM ended))
      SELECT ended.*, pg_notify($8, $9 || ended.id) FROM ended`,
    runningForUpdate: `SELECT id, tool, attempts, lease_until FROM ${s}.jobs WHERE id = $1 AND state = 'running' FOR UPDATE`,
    requeue: `WITH queued AS (UPDATE ${s}.jobs SET state = 'queued', worker_id = NULL, lease_until = NULL, updated_at = $2
        WHERE id = $1 AND state = 'running' RETURNING tool)
      SELECT pg_notify($3, 'q:' || tool) FROM queued`,
    listAll: `SELECT ${COLUMNS} FROM ${s}.jobs WHERE ($1::text IS NULL OR state = $1) AND ($4::text IS NULL OR tool = $4)
      AND ${LIVE} ORDER BY created_at DESC, seq DESC LIMIT $3`,
    listClient: `SELECT ${COLUMNS} FROM ${s}.jobs WHERE client_id = $5 AND ($1::text IS NULL OR state = $1)
      AND ($4::text IS NULL OR tool = $4) AND ${LIVE} ORDER BY created_at DESC, seq DESC LIMIT $3`,
    usage: `SELECT open, bytes FROM ${s}.clients WHERE client_id = $1`,
    // Live jobs only: one past its retention is gone for every reader, swept or not (as in every store).
    counts: `SELECT state, count(*)::int AS n FROM ${s}.jobs WHERE expires_at IS NULL OR expires_at > $1 GROUP BY state`,
    // Other processes' lapsed offers; SKIP LOCKED: two processes tidying at once never wait on each other.
    forgetOffers: `DELETE FROM ${s}.offers WHERE (tool, worker_id) IN
      (SELECT tool, worker_id FROM ${s}.offers WHERE expires_at <= $1 AND worker_id <> $2 FOR UPDATE SKIP LOCKED)`,
    announce: `INSERT INTO ${s}.offers (tool, worker_id, expires_at) SELECT t, $2::text, $3::bigint FROM unnest($1::text[]) AS t ORDER BY t
      ON CONFLICT (tool, worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
    offered: `SELECT 1 FROM ${s}.offers WHERE tool = $1 AND expires_at > $2 LIMIT 1`,
    sweepLock: "SELECT pg_try_advisory_xact_lock($1::bigint) AS locked",
    // Deletes a batch of jobs past their retention and gives their bytes back to their clients.
    sweep: `WITH gone AS (DELETE FROM ${s}.jobs WHERE id IN (SELECT id FROM ${s}.jobs WHERE expires_at <= $1
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id, client_id, bytes),
        per_client AS (SELECT client_id, sum(bytes)::bigint AS bytes FROM gone GROUP BY client_id),
        released AS (UPDATE ${s}.clients c SET bytes = c.bytes - p.bytes FROM per_client p WHERE c.client_id = p.client_id)
      SELECT id, client_id, pg_notify($3, 'v:' || id) FROM gone`,
    // Of the starts, only each tool's latest counts.
    pruneStarts: `DELETE FROM ${s}.starts s USING (SELECT tool, max(seq) AS latest FROM ${s}.starts GROUP BY tool) m
      WHERE s.tool = m.tool AND s.seq < m.latest`,
    // A client's row goes with its last job (a create that takes it meanwhile holds its lock, and keeps it).
    forgetClients: `DELETE FROM ${s}.clients WHERE client_id = ANY($1::text[]) AND open <= 0 AND bytes <= 0`,
  };
}

type Statements = ReturnType<typeof statements>;

/**
 * Jobs in PostgreSQL, shared by every replica and worker. Each transition
 * is one statement (a compare-and-set on the state), except creating a job
 * and requeueing one, which are short transactions; workers claim with
 * `FOR UPDATE SKIP LOCKED`, lowest turn first (fair across clients). Every
 * change a poll shows is NOTIFYed on the schema's channel when it commits,
 * so a long poll held by any process wakes at once (`watch`), and a cancel
 * reaches the process running the job. Per-client counters make quotas one
 * indexed read.
 */
export class PostgresJobStore implements JobStore {
  readonly #db: PostgresConnection;
  readonly #schema: string;
  readonly #channel: string;
  readonly #sql: Statements;
  readonly #names: Record<keyof Statements, string>;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #closeConnection: boolean;
  readonly #sweepKey: string;
  readonly #watchers = new JobWatchers();
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(connection: PostgresConnection, options: PostgresJobStoreOptions = {}) {
    this.#db = connection;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#channel = eventsChannel(this.#schema);
    this.#sql = statements(this.#schema);
    // Named statements are prepared once per connection; the schema in the name keeps schemas sharing a pool apart.
    this.#names = Object.fromEntries(Object.keys(this.#sql).map((k) => [k, `smcp:${this.#schema}:${k}`])) as Record<
      keyof Statements,
      string
    >;
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    const now = options.now ?? Date.now;
    this.#now = () => ms(now());
    this.#closeConnection = options.closeConnection ?? false;
    this.#sweepKey = advisoryKey(`smcp-sweep:${this.#schema}`);
  }

  /** The schema this store's tables are in. */
  get schema(): string {
    return this.#schema;
  }

  #query<R extends object = JobRow>(name: keyof Statements, values: unknown[], on: Queryable = this.#db.pool) {
    return on.query<R>({ name: this.#names[name], text: this.#sql[name], values });
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const now = this.#now();
    const args = canonicalize(input.args);
    const key = input.idempotencyKey ?? null;
    if (key !== null) {
      const existing = await this.#existing(input, key, now);
      if (existing) return { job: existing, created: false };
    }
    const maxOpen = input.maxOpenJobs ?? NO_LIMIT;
    const maxBytes = input.maxStoredBytes ?? NO_LIMIT;
    const values = [
      input.id,
      input.clientId,
      input.tool,
      args,
      key,
      now,
      this.#channel,
      args.length,
      maxOpen,
      maxBytes,
      input.trace ?? null,
    ];
    let row: JobRow | undefined;
    try {
      row = (await this.#query("create", values)).rows[0];
    } catch (error) {
      // Another create of this client took the key meanwhile (the unique index said so): that job is the answer.
      const existing = key !== null && isUniqueViolation(error) ? await this.#existing(input, key, now) : undefined;
      if (existing) return { job: existing, created: false };
      throw error;
    }
    if (row) return { job: jobFromRow(row), created: true };
    // Refused by the quota check: which one (read after the fact; the refusal itself was atomic).
    const usage = (await this.#query<{ open: number; bytes: number }>("usageForRefusal", [input.clientId])).rows[0];
    throw quotaExceeded((usage?.open ?? 0) >= maxOpen ? "open_jobs" : "stored_bytes");
  }

  // The live job an idempotency key names; a finished job past its retention (not swept yet) lets go of the key.
  async #existing(input: NewJob, key: string, now: number): Promise<JobRecord | undefined> {
    const row = (await this.#query("byKey", [input.clientId, input.tool, key])).rows[0];
    if (!row) return undefined;
    if (row.expires_at === null || row.expires_at > now) return jobFromRow(row);
    await this.#query("releaseKey", [input.clientId, input.tool, key, now]);
    return undefined;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = (await this.#query("get", [id, this.#now()])).rows[0];
    return row && jobFromRow(row);
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const row = (await this.#query("start", [id, workerId, ms(leaseUntil), this.#now()])).rows[0];
    return row && jobFromRow(row);
  }

  async claim(workerId: string, leaseUntil: number, tools?: readonly string[]): Promise<JobRecord | undefined> {
    const row = (await this.#query("claim", [workerId, ms(leaseUntil), this.#now(), tools ?? null])).rows[0];
    return row && jobFromRow(row);
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const held = new Set((await this.#query<{ id: string }>("renew", [ids, workerId, ms(leaseUntil)])).rows.map((r) => r.id));
    return ids.filter((id) => !held.has(id));
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    return (await this.#query("stale", [ms(now), limit])).rows.map(jobFromRow);
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    return (await this.#query("progress", [id, canonicalize(progress), this.#now(), this.#channel])).rowCount === 1;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const result = outcome.state === "done" ? canonicalize(outcome.result) : null;
    const error = outcome.state === "error" ? canonicalize(outcome.error) : null;
    return (await this.#end(this.#db.pool, id, outcome.state, result, error, "v:")) !== undefined;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const row = await this.#end(this.#db.pool, id, "cancelled", null, CANCELLED_ERROR_TEXT, "c:");
    return row ? jobFromRow(row) : this.get(id);
  }

  async #end(
    on: Queryable,
    id: string,
    state: JobState,
    result: string | null,
    error: string | null,
    event: "v:" | "c:",
  ): Promise<JobRow | undefined> {
    const now = this.#now();
    const added = (result ?? error ?? "").length;
    const values = [id, state, result, error, now, now + this.#retentionMs, added, this.#channel, event];
    return (await this.#query("finish", values, on)).rows[0];
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    return this.#db.transaction(async (tx) => {
      const row = (await this.#query<{ id: string; attempts: number; lease_until: number | null }>("runningForUpdate", [id], tx))
        .rows[0];
      if (!row) return undefined;
      if (staleBefore !== undefined && !(row.lease_until !== null && row.lease_until < staleBefore)) return undefined;
      if (row.attempts >= maxAttempts) {
        await this.#end(tx, id, "error", null, canonicalize(attemptsExhausted(row.attempts)), "v:");
        return "error";
      }
      await this.#query("requeue", [id, this.#now(), this.#channel], tx);
      return "queued";
    });
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const values: unknown[] = [filter.state ?? null, this.#now(), filter.limit ?? null, filter.tool ?? null];
    const rows =
      filter.clientId === undefined
        ? await this.#query("listAll", values)
        : await this.#query("listClient", [...values, filter.clientId]);
    return rows.rows.map(jobFromRow);
  }

  async sweep(at = this.#now()): Promise<number> {
    const now = ms(at);
    let removed = 0;
    for (;;) {
      const batch = await this.#db.transaction(async (tx) => {
        // One process sweeps at a time: two sweeps would update the same clients' counters in different orders.
        const lock = await this.#query<{ locked: boolean }>("sweepLock", [this.#sweepKey], tx);
        if (!lock.rows[0]?.locked) return 0;
        if (removed === 0) await this.#query("pruneStarts", [], tx);
        const gone = (await this.#query<{ id: string; client_id: string }>("sweep", [now, SWEEP_BATCH, this.#channel], tx)).rows;
        const clients = [...new Set(gone.map((r) => r.client_id))].sort();
        if (clients.length > 0) await this.#query("forgetClients", [clients], tx);
        return gone.length;
      });
      removed += batch;
      if (batch < SWEEP_BATCH) return removed;
    }
  }

  async watch(id: string, version: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    // Listen before reading the version, so a change between the two is not missed; with the LISTEN
    // connection down (and not coming back), the poll fails closed rather than waiting blind.
    await this.#listen();
    const waiting = this.#watchers.wait(id, signal);
    try {
      const row = (await this.#query<{ version: number }>("version", [id, this.#now()])).rows[0];
      if (!row || row.version !== version) this.#watchers.notify(id);
    } catch (error) {
      this.#watchers.notify(id);
      throw error;
    }
    await waiting;
  }

  async usage(clientId: string): Promise<ClientUsage> {
    const row = (await this.#query<{ open: number; bytes: number }>("usage", [clientId])).rows[0];
    return { open: row?.open ?? 0, bytes: row?.bytes ?? 0 };
  }

  async counts(): Promise<JobCounts> {
    const counts = { queued: 0, running: 0, finished: 0 };
    for (const { state, n } of (await this.#query<{ state: JobState; n: number }>("counts", [this.#now()])).rows) {
      if (state === "queued") counts.queued += n;
      else if (state === "running") counts.running += n;
      else counts.finished += n;
    }
    return counts;
  }

  async announce(workerId: string, tools: readonly string[], ttlMs: number): Promise<void> {
    const now = this.#now();
    await this.#query("forgetOffers", [now, workerId]);
    await this.#query("announce", [tools, workerId, now + ttlMs]);
  }

  async isOffered(tool: string): Promise<boolean> {
    return ((await this.#query("offered", [tool, this.#now()])).rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    // Held polls answer now (with the job as it is), rather than at their timeout.
    for (const id of this.#watchers.ids()) this.#watchers.notify(id);
    await unsubscribe?.();
    if (this.#closeConnection) await this.#db.close();
  }

  // The store's channel, subscribed on the first long poll and kept until close.
  #listen(): Promise<void> {
    this.#unsubscribe ??= this.#db.subscribe(this.#channel, {
      message: (payload) => {
        if (payload.startsWith("v:") || payload.startsWith("c:")) this.#watchers.notify(payload.slice(2));
      },
      // Changes may have been missed while nobody listened: every waiter reads its job again.
      lost: () => {
        for (const id of this.#watchers.ids()) this.#watchers.notify(id);
      },
    });
    return this.#db.listening(this.#channel);
  }
}
