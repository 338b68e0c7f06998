import { attemptsExhausted, CANCELLED_ERROR, isFinal, nextTurn, quotaExceeded } from "../../jobs/policy.js";
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
import { SmcpError } from "../../protocol/errors.js";
import { MinHeap } from "../../util/heap.js";
import { JobWatchers } from "../watchers.js";

/** Options for {@link MemoryJobStore}. */
export interface MemoryJobStoreOptions extends JobStoreOptions {
  /** Jobs held at most; past it the oldest finished jobs go first, and with none, creation fails. Default 200,000. */
  maxJobs?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Job = Mutable<JobRecord> & { seq: number };
interface Client extends ClientUsage {
  lastTurn: number;
}

/**
 * Jobs in process memory: fast, lost on restart, bounded by retention and
 * `maxJobs`. The queued jobs are a heap ordered by (turn, age), so
 * claiming is fair across clients and costs O(log n).
 */
export class MemoryJobStore implements JobStore {
  readonly #jobs = new Map<string, Job>();
  readonly #byIdempotencyKey = new Map<string, string>();
  readonly #clients = new Map<string, Client>();
  // Per tool, the turn of the job started last: the turn being served now, the least a new job gets.
  readonly #serving = new Map<string, number>();
  readonly #queued = new MinHeap<Job>((a, b) => a.turn < b.turn || (a.turn === b.turn && a.seq < b.seq));
  // Finished jobs in the order they expire (retention is one constant, so finish order is expiry order).
  #expiring: Job[] = [];
  #expiringHead = 0;
  #seq = 0;
  readonly #watchers = new JobWatchers();
  // Per tool, the workers that said they take it, and until when.
  readonly #offers = new Map<string, Map<string, number>>();
  readonly #retentionMs: number;
  readonly #maxJobs: number;
  readonly #now: () => number;

  constructor(options: MemoryJobStoreOptions = {}) {
    this.#retentionMs = options.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
    this.#maxJobs = options.maxJobs ?? 200_000;
    this.#now = options.now ?? Date.now;
  }

  async create(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const idemKey = input.idempotencyKey === undefined ? undefined : idempotencyIndexKey(input);
    if (idemKey !== undefined) {
      const existing = this.#live(this.#byIdempotencyKey.get(idemKey));
      if (existing) return { job: view(existing), created: false };
    }
    const client = this.#client(input.clientId);
    const args = canonicalize(input.args);
    if (input.maxOpenJobs !== undefined && client.open >= input.maxOpenJobs) throw quotaExceeded("open_jobs");
    if (input.maxStoredBytes !== undefined && client.bytes + args.length > input.maxStoredBytes) {
      throw quotaExceeded("stored_bytes");
    }
    if (this.#jobs.size >= this.#maxJobs) this.#evict();
    const now = this.#now();
    const turn = nextTurn(client, this.#serving.get(input.tool));
    const job: Job = {
      id: input.id,
      clientId: input.clientId,
      tool: input.tool,
      args: input.args,
      idempotencyKey: input.idempotencyKey ?? null,
      trace: input.trace ?? null,
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
      version: 1,
      turn,
      bytes: args.length,
      seq: ++this.#seq,
    };
    client.open++;
    client.bytes += job.bytes;
    client.lastTurn = turn;
    this.#jobs.set(job.id, job);
    this.#queued.push(job);
    if (idemKey !== undefined) this.#byIdempotencyKey.set(idemKey, job.id);
    return { job: view(job), created: true };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    return job && view(job);
  }

  async start(id: string, workerId: string, leaseUntil: number): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    if (job?.state !== "queued") return undefined;
    job.state = "running";
    job.attempts += 1;
    job.workerId = workerId;
    job.leaseUntil = leaseUntil;
    job.updatedAt = this.#now(); // not a change a poll shows: no new version
    this.#serving.set(job.tool, job.turn);
    return view(job);
  }

  async claim(workerId: string, leaseUntil: number, tools?: readonly string[]): Promise<JobRecord | undefined> {
    const skipped: Job[] = [];
    try {
      for (let job = this.#queued.pop(); job; job = this.#queued.pop()) {
        // Entries of jobs that left `queued` (cancelled, started by id, expired) are dropped as they surface.
        if (job.state !== "queued" || this.#jobs.get(job.id) !== job) continue;
        if (tools && !tools.includes(job.tool)) {
          skipped.push(job);
          continue;
        }
        return this.start(job.id, workerId, leaseUntil);
      }
      return undefined;
    } finally {
      for (const job of skipped) this.#queued.push(job);
    }
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
      if (job.state === "running" && job.leaseUntil !== null && job.leaseUntil < now) out.push(view(job));
    }
    return out;
  }

  async progress(id: string, progress: JsonObject): Promise<boolean> {
    const job = this.#live(id);
    if (job?.state !== "running") return false;
    job.progress = progress;
    this.#changed(job);
    return true;
  }

  async finish(id: string, outcome: JobOutcome): Promise<boolean> {
    const job = this.#live(id);
    if (!job || isFinal(job.state)) return false;
    if (outcome.state === "done") job.result = outcome.result;
    else job.error = outcome.error;
    this.#end(job, outcome.state, canonicalize(outcome.state === "done" ? outcome.result : outcome.error).length);
    return true;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const job = this.#live(id);
    if (!job) return undefined;
    if (!isFinal(job.state)) {
      job.error = { ...CANCELLED_ERROR };
      this.#end(job, "cancelled", canonicalize(job.error).length);
    }
    return view(job);
  }

  async requeue(id: string, maxAttempts: number, staleBefore?: number): Promise<JobState | undefined> {
    const job = this.#live(id);
    if (job?.state !== "running") return undefined;
    if (staleBefore !== undefined && !(job.leaseUntil !== null && job.leaseUntil < staleBefore)) return undefined;
    if (job.attempts >= maxAttempts) {
      job.error = attemptsExhausted(job.attempts);
      this.#end(job, "error", canonicalize(job.error).length);
    } else {
      job.state = "queued";
      job.workerId = null;
      job.leaseUntil = null;
      this.#queued.push(job);
      job.updatedAt = this.#now();
    }
    return job.state;
  }

  async list(filter: JobListFilter = {}): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const job of this.#jobs.values()) {
      if (filter.clientId !== undefined && job.clientId !== filter.clientId) continue;
      if (filter.state !== undefined && job.state !== filter.state) continue;
      if (filter.tool !== undefined && job.tool !== filter.tool) continue;
      if (this.#expired(job)) continue;
      out.push(view(job));
    }
    out.reverse();
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  async sweep(now = this.#now()): Promise<number> {
    let removed = 0;
    while (this.#expiringHead < this.#expiring.length) {
      const job = this.#expiring[this.#expiringHead] as Job;
      if (job.expiresAt !== null && job.expiresAt > now) break;
      this.#expiringHead++;
      if (this.#jobs.get(job.id) === job) {
        this.#delete(job);
        removed++;
      }
    }
    if (this.#expiringHead > 1024 && this.#expiringHead * 2 > this.#expiring.length) {
      this.#expiring = this.#expiring.slice(this.#expiringHead);
      this.#expiringHead = 0;
    }
    return removed;
  }

  async watch(id: string, version: number, signal: AbortSignal): Promise<void> {
    const job = this.#live(id);
    if (!job || job.version !== version) return;
    await this.#watchers.wait(id, signal);
  }

  async usage(clientId: string): Promise<ClientUsage> {
    const client = this.#clients.get(clientId);
    return { open: client?.open ?? 0, bytes: client?.bytes ?? 0 };
  }

  async counts(): Promise<JobCounts> {
    const counts = { queued: 0, running: 0, finished: 0 };
    const now = this.#now();
    for (const job of this.#jobs.values()) {
      // Live jobs only: one past its retention is gone for every reader, swept or not (as in every store).
      if (job.expiresAt !== null && job.expiresAt <= now) continue;
      if (job.state === "queued") counts.queued++;
      else if (job.state === "running") counts.running++;
      else counts.finished++;
    }
    return counts;
  }

  async announce(workerId: string, tools: readonly string[], ttlMs: number): Promise<void> {
    const until = this.#now() + ttlMs;
    for (const tool of tools) {
      let workers = this.#offers.get(tool);
      if (!workers) {
        workers = new Map();
        this.#offers.set(tool, workers);
      }
      workers.set(workerId, until);
    }
  }

  async isOffered(tool: string): Promise<boolean> {
    const now = this.#now();
    for (const until of this.#offers.get(tool)?.values() ?? []) if (until > now) return true;
    return false;
  }

  /** How many jobs are held (for tests and metrics). */
  get size(): number {
    return this.#jobs.size;
  }

  async close(): Promise<void> {}

  #client(clientId: string): Client {
    let client = this.#clients.get(clientId);
    if (!client) {
      client = { open: 0, bytes: 0, lastTurn: 0 };
      this.#clients.set(clientId, client);
    }
    return client;
  }

  // A change a poll shows (progress, the end): a new version, and long polls wake.
  #changed(job: Job): void {
    job.version++;
    job.updatedAt = this.#now();
    this.#watchers.notify(job.id);
  }

  #end(job: Job, state: JobState, resultBytes: number): void {
    const client = this.#client(job.clientId);
    client.open--;
    client.bytes += resultBytes;
    job.bytes += resultBytes;
    job.state = state;
    job.workerId = null;
    job.leaseUntil = null;
    job.expiresAt = this.#now() + this.#retentionMs;
    this.#expiring.push(job);
    this.#changed(job);
  }

  #expired(job: JobRecord): boolean {
    return job.expiresAt !== null && job.expiresAt <= this.#now();
  }

  #live(id: string | undefined): Job | undefined {
    if (id === undefined) return undefined;
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    if (this.#expired(job)) {
      this.#delete(job);
      return undefined;
    }
    return job;
  }

  #delete(job: Job): void {
    this.#jobs.delete(job.id);
    if (job.idempotencyKey !== null) this.#byIdempotencyKey.delete(idempotencyIndexKey(job));
    const client = this.#clients.get(job.clientId);
    if (client) {
      if (!isFinal(job.state)) client.open--;
      client.bytes -= job.bytes;
      if (client.open === 0 && client.bytes === 0) this.#clients.delete(job.clientId);
    }
    this.#watchers.notify(job.id);
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
    if (this.#jobs.size >= this.#maxJobs)
      throw new SmcpError("rate_limited", "the job store is full", { details: { retry_after_ms: 1000 } });
  }
}

/** A snapshot callers may keep: later changes to the stored job do not show through it. */
function view(job: Job): JobRecord {
  const { seq: _seq, ...record } = job;
  return record;
}

function idempotencyIndexKey(job: { clientId: string; tool: string; idempotencyKey?: string | null | undefined }): string {
  return `${job.clientId.length}:${job.clientId}:${job.tool.length}:${job.tool}:${job.idempotencyKey}`;
}
