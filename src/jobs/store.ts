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
}

/** What creating a job needs. */
export interface NewJob {
  id: string;
  clientId: string;
  tool: string;
  args: JsonObject;
  idempotencyKey?: string | undefined;
}

/** A job's outcome, written once. */
export type JobOutcome = { state: "done"; result: JsonObject } | { state: "error"; error: JobError };

/** Filter for {@link JobStore.list}. */
export interface JobListFilter {
  clientId?: string;
  state?: JobState;
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
   */
  create(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  /** The job with this id, or undefined (also once it expired). */
  get(id: string): Promise<JobRecord | undefined>;
  /** `queued` -> `running` (attempts + 1) under a lease. Undefined when the job is not queued. */
  start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined>;
  /** Starts the oldest `queued` job, as {@link start} does; undefined when none is queued. */
  claim(workerId: string, leaseUntil: number): Promise<JobRecord | undefined>;
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
  /** Deletes finished jobs whose retention has passed; returns how many. */
  sweep(now?: number): Promise<number>;
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

/** True for a state no transition leaves. */
export function isFinal(state: JobState): boolean {
  return state === "done" || state === "error" || state === "cancelled";
}
