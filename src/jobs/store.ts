import type { JsonObject } from "../protocol/canonical.js";
import type { JobView } from "../tools/define.js";

/** A job's state in the store. `cancelled` is reported on the wire as `error`/`cancelled`. */
export type JobState = "queued" | "running" | "done" | "error" | "cancelled";

/** A job's final error. */
export interface JobError {
  code: string;
  message: string;
  details?: unknown;
}

/** A stored job. */
export interface JobRecord extends JobView {
  /** The client that started it; no other client may see it. */
  readonly clientId: string;
  readonly args: JsonObject;
  readonly idempotencyKey: string | null;
  /** When a finished job may be deleted (ms); null while it is not finished. */
  readonly expiresAt: number | null;
  /** Which worker runs it now, while running. */
  readonly workerId: string | null;
  /** While running: the worker's lease (ms); past it, the worker is presumed dead and the job is requeued. */
  readonly leaseUntil: number | null;
  /**
   * Bumped by every change a poll shows (progress, the end; not a worker
   * picking the job up): what a long poll compares. 1 when created.
   */
  readonly version: number;
  /**
   * Fair-scheduling turn: one more than the client's previous job while it
   * has open jobs (else 1), but never below the turn its tool is serving now
   * (the turn of the tool's jobs running now), so a client is not charged for
   * jobs that ran while nobody else waited. Queued jobs start lowest turn
   * first (then oldest), so a client with one job goes before a flood's second.
   */
  readonly turn: number;
  /** Bytes the job holds in the store (its canonical args, and its result or error), counted against its client's quota. */
  readonly bytes: number;
  /** The W3C `traceparent` of the call that started it (SPEC §10), so its run joins that trace; null when none. */
  readonly trace?: string | null | undefined;
}

/** What creating a job needs. */
export interface NewJob {
  id: string;
  clientId: string;
  tool: string;
  args: JsonObject;
  idempotencyKey?: string | undefined;
  /** Refuse (`rate_limited`) when the client already has this many open (queued or running) jobs. */
  maxOpenJobs?: number | undefined;
  /** Refuse (`rate_limited`) when the client's stored bytes would pass this. */
  maxStoredBytes?: number | undefined;
  /** The W3C `traceparent` of the call that starts it (SPEC §10); kept with the job. */
  trace?: string | undefined;
}

/** Jobs by state, for metrics. */
export interface JobCounts {
  queued: number;
  running: number;
  finished: number;
}

/** What one client holds in a job store (quotas, metrics). */
export interface ClientUsage {
  /** Queued and running jobs. */
  open: number;
  /** Bytes of its retained jobs (args and results). */
  bytes: number;
}

/** A job's outcome, written once. */
export type JobOutcome = { state: "done"; result: JsonObject } | { state: "error"; error: JobError };

/** Filter for {@link JobStore.list}. */
export interface JobListFilter {
  /** Only this client's jobs; absent: every client's (what a `jobs:all` view would ask for). */
  clientId?: string;
  state?: JobState;
  /** Only jobs of this tool (exact name). */
  tool?: string;
  limit?: number;
}

/**
 * Where jobs live. Every transition is a compare-and-set, so that any
 * replica or worker may act on a job and a late writer cannot overwrite a
 * final state (a finish after a cancel is a no-op). Every method throws when
 * the store is unreachable; the server then answers `unavailable`.
 */
export interface JobStore {
  /**
   * Stores a new `queued` job, durably, before the server answers `accepted`.
   * With an idempotency key already used by this client for the same tool,
   * returns the existing job and `created: false` (the caller compares args).
   * Past the client's `maxOpenJobs` or `maxStoredBytes` it stores nothing and
   * throws `SmcpError("rate_limited")` with `details.retry_after_ms`; the
   * check and the insert are one atomic step.
   */
  create(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  /** The job with this id, or undefined (also once it expired). */
  get(id: string): Promise<JobRecord | undefined>;
  /** `queued` -> `running` (attempts + 1) under a lease. Undefined when the job is not queued. */
  start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined>;
  /**
   * Starts the next `queued` job, as {@link start} does; with `tools`, only a
   * job of one of those tools. Undefined when none is queued.
   */
  claim(workerId: string, leaseUntil: number, tools?: readonly string[]): Promise<JobRecord | undefined>;
  /**
   * Extends the lease of the given jobs this worker runs. Returns the ids it
   * no longer holds (cancelled, finished or requeued elsewhere): the worker aborts them.
   */
  heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]>;
  /** Running jobs whose lease ended before `now` (their worker is presumed dead). */
  stale(now: number, limit?: number): Promise<JobRecord[]>;
  /** Sets progress while `running`; false otherwise. */
  progress(id: string, progress: JsonObject): Promise<boolean>;
  /** `queued`/`running` -> `done`/`error`; false when already final (e.g. cancelled). */
  finish(id: string, outcome: JobOutcome): Promise<boolean>;
  /** `queued`/`running` -> `cancelled`; returns the job as it is after, or undefined if unknown. */
  cancel(id: string): Promise<JobRecord | undefined>;
  /**
   * `running` -> `queued` again for a job whose worker died or shut down, or
   * -> `error` once `maxAttempts` runs were made. With `staleBefore`, only if
   * the lease ended before it. Returns the new state, or undefined when nothing changed.
   */
  requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined>;
  /** Jobs matching the filter, newest first. */
  list(filter?: JobListFilter): Promise<JobRecord[]>;
  /** Deletes finished jobs whose retention has passed (and their idempotency keys and quota use); returns how many. */
  sweep(now?: number): Promise<number>;
  /**
   * Resolves once the job's version differs from `version` (at once if it
   * already does): any change by any process sharing the store. Also
   * resolves when `signal` aborts. What `poll_job` with `wait_ms` waits on.
   */
  watch(id: string, version: number, signal: AbortSignal): Promise<void>;
  /** A client's open jobs and stored bytes. */
  usage(clientId: string): Promise<ClientUsage>;
  /** How many jobs are queued, running, and finished but retained (metrics). */
  counts(): Promise<JobCounts>;
  /**
   * A process that runs jobs says which tools it takes, for `ttlMs` (it
   * repeats this while it runs): so a job whose tool no process takes can
   * say so instead of waiting silently.
   */
  announce(workerId: string, tools: readonly string[], ttlMs: number): Promise<void>;
  /** Whether any live process has announced it takes this tool's jobs. */
  isOffered(tool: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Options every store takes. */
export interface JobStoreOptions {
  /** How long a finished job stays readable, in ms. Default 24 h. */
  retentionMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Default retention of finished jobs: 24 hours. */
export const DEFAULT_JOB_RETENTION_MS = 24 * 60 * 60 * 1000;
