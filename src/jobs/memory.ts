import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import {
  DEFAULT_JOB_RETENTION_MS,
  isFinal,
  type JobListFilter,
  type JobOutcome,
  type JobRecord,
  type JobState,
  type JobStore,
  type JobStoreOptions,
  type NewJob,
} from "./store.js";

/** Options for {@link MemoryJobStore}. */
export interface MemoryJobStoreOptions extends JobStoreOptions {
  /** Jobs held at most; past it the oldest finished jobs go first, and with none, creation fails. Default 200,000. */
  maxJobs?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Jobs in process memory: fast, lost on restart, bounded by retention and `maxJobs`. */
export class MemoryJobStore implements JobStore {
  readonly #jobs = new Map<string, Mutable<JobRecord>>();
  readonly #byIdempotencyKey = new Map<string, string>();
  readonly #retentionMs: number;
  readonly #maxJobs: number;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: MemoryJobStoreOptions = {}) {
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#maxJobs = options.maxJobs ?? 200_000;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => void this.sweep(), Math.min(this.#retentionMs, 60_000));
    this.#timer.unref();
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const idemKey = input.idempotencyKey === undefined ? undefined : idempotencyIndexKey(input);
    if (idemKey !== undefined) {
      const existing = this.#live(this.#byIdempotencyKey.get(idemKey));
      if (existing) return { job: { ...existing }, created: false };
    }
    if (this.#jobs.size >= this.#maxJobs) this.#evict();
    const now = this.#now();
    const job: Mutable<JobRecord> = {
      id: input.id,
      clientId: input.clientId,
      tool: input.tool,
      args: input.args,
      idempotencyKey: input.idempotencyKey ?? null,
      state: "queued",
      progress: null,
      result: null,
      error: null,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      expiresAt: null,
      workerId: null,
      leaseUntil: null,
    };
    this.#jobs.set(job.id, job);
    if (idemKey !== undefined) this.#byIdempotencyKey.set(idemKey, job.id);
    return { job: { ...job }, created: true };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    return job && { ...job };
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    if (job?.state !== "queued") return undefined;
    job.state = "running";
    job.attempts += 1;
    job.workerId = workerId;
    job.leaseUntil = leaseUntil;
    job.updatedAt = this.#now();
    return { ...job };
  }

  async claim(workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    for (const job of this.#jobs.values()) {
      if (job.state === "queued" && !this.#expired(job)) return this.start(job.id, workerId, leaseUntil);
    }
    return undefined;
  }

  async heartbeat(workerId: string, ids: readonly string[], leaseUntil: number): Promise<string[]> {
    const lost: string[] = [];
    for (const id of ids) {
      const job = this.#live(id);
      if (job?.state === "running" && job.workerId === workerId) job.leaseUntil = leaseUntil;
      else lost.push(id);
    }
    return lost;
  }

  async stale(now: number, limit = 100): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const job of this.#jobs.values()) {
      if (out.length >= limit) break;
      if (job.state === "running" && job.leaseUntil !== null && job.leaseUntil < now) out.push({ ...job });
    }
    return out;
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    const job = this.#live(id);
    if (job?.state !== "running") return false;
    job.progress = progress;
    job.updatedAt = this.#now();
    return true;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const job = this.#live(id);
    if (!job || isFinal(job.state)) return false;
    if (outcome.state === "done") job.result = outcome.result;
    else job.error = outcome.error;
    this.#end(job, outcome.state);
    return true;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    if (!job) return undefined;
    if (!isFinal(job.state)) {
      job.error = { code: "cancelled", message: "cancelled" };
      this.#end(job, "cancelled");
    }
    return { ...job };
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    const job = this.#live(id);
    if (job?.state !== "running") return undefined;
    if (staleBefore !== undefined && !(job.leaseUntil !== null && job.leaseUntil < staleBefore)) return undefined;
    if (job.attempts >= maxAttempts) {
      job.error = { code: "tool_failed", message: `the worker stopped during each of ${job.attempts} attempts` };
      this.#end(job, "error");
    } else {
      job.state = "queued";
      job.workerId = null;
      job.leaseUntil = null;
      job.updatedAt = this.#now();
    }
    return job.state;
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const job of this.#jobs.values()) {
      if (filter.clientId !== undefined && job.clientId !== filter.clientId) continue;
      if (filter.state !== undefined && job.state !== filter.state) continue;
      if (this.#expired(job)) continue;
      out.push({ ...job });
    }
    out.reverse();
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  async sweep(now = this.#now()): Promise<number> {
    let removed = 0;
    for (const job of this.#jobs.values()) {
      if (job.expiresAt !== null && job.expiresAt <= now) {
        this.#delete(job);
        removed++;
      }
    }
    return removed;
  }

  /** How many jobs are held (for tests and metrics). */
  get size(): number {
    return this.#jobs.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
  }

  #end(job: Mutable<JobRecord>, state: JobState): void {
    const now = this.#now();
    job.state = state;
    job.workerId = null;
    job.leaseUntil = null;
    job.updatedAt = now;
    job.expiresAt = now + this.#retentionMs;
  }

  #expired(job: JobRecord): boolean {
    return job.expiresAt !== null && job.expiresAt <= this.#now();
  }

  #live(id: string | undefined): Mutable<JobRecord> | undefined {
    if (id === undefined) return undefined;
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    if (this.#expired(job)) {
      this.#delete(job);
      return undefined;
    }
    return job;
  }

  #delete(job: JobRecord): void {
    this.#jobs.delete(job.id);
    if (job.idempotencyKey !== null) this.#byIdempotencyKey.delete(idempotencyIndexKey(job));
  }

  // Map iteration is insertion order, so the first finished jobs met are the oldest.
  #evict(): void {
    void this.sweep();
    const excess = this.#jobs.size - this.#maxJobs + 1;
    let removed = 0;
    for (const job of this.#jobs.values()) {
      if (removed >= excess) break;
      if (isFinal(job.state)) {
        this.#delete(job);
        removed++;
      }
    }
    if (this.#jobs.size >= this.#maxJobs) throw new SmcpError("rate_limited", "too many unfinished jobs");
  }
}

function idempotencyIndexKey(job: { clientId: string; tool: string; idempotencyKey?: string | null | undefined }): string {
  return `${job.clientId.length}:${job.clientId}:${job.tool.length}:${job.tool}:${job.idempotencyKey}`;
}
