import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { canonicalize } from "../protocol/canonical.js";
import type { JobAccess, ServerInfo } from "../tools/define.js";
import type { ToolRegistry } from "../tools/registry.js";
import { ToolRuns } from "../tools/runs.js";
import { type AccessOptions, jobAccessFor, type LongPollLimits, LongPollSlots } from "./access.js";
import { ClaimingJobQueue } from "./claiming-queue.js";
import type { JobEvent } from "./events.js";
import type { JobQueue, JobQueueFactory } from "./queue.js";
import { newWorkerId } from "./recovery.js";
import { JobRunner, type ToolEnvironment } from "./runner.js";
import type { JobRecord, JobStore, NewJob } from "./store.js";

/** Jobs run at once by one engine, per tool (`smcp serve`/`worker --concurrency`). */
export const DEFAULT_CONCURRENCY = 32;

/** Where an internal error happened, for `onError` hooks. */
export interface ErrorContext {
  phase: "handler" | "job" | "store" | "internal";
  tool?: string;
  jobId?: string;
}

/** Options for {@link createJobEngine}. */
export interface JobEngineOptions {
  store: JobStore;
  /** How jobs are dispatched. Default: in this process (a {@link ClaimingJobQueue} woken by its own enqueues). */
  queue?: JobQueueFactory | undefined;
  tools: ToolRegistry;
  /** What handlers see in `ctx.server`. */
  server: ServerInfo;
  /** Whether this process runs jobs (false: an API replica that only enqueues). Default true. */
  execute?: boolean | undefined;
  /** Names this process in job records. Default: a random id. */
  workerId?: string | undefined;
  leaseMs?: number | undefined;
  /** Jobs run at once here. Default 32. A run that outlives its timeout keeps its slot until it really ends. */
  concurrency?: number | undefined;
  /** This process's tool runs (shared with the server's sync calls). Default: the engine's own. */
  runs?: ToolRuns | undefined;
  /** Answer a job tool's unexpected errors with "the tool failed" (see `ServerOptions.hideToolErrors`). */
  hideToolErrors?: boolean | undefined;
  now?: (() => number) | undefined;
  onError?: ((error: unknown, context: ErrorContext) => void) | undefined;
  /** Caps on long polls held at once. */
  longPoll?: LongPollLimits | undefined;
  /** Sees each job transition this process makes (metrics, logs). */
  onJob?: ((event: JobEvent) => void) | undefined;
  /**
   * How often this process deletes finished jobs past their retention
   * (`JobStore.sweep`), ms; 0: never (another process sweeps). Default 60,000.
   */
  sweepEveryMs?: number | undefined;
}

/** The job machinery of one process: a runner, the queue that feeds it, and per-client access. */
export interface JobEngine {
  readonly store: JobStore;
  readonly runner: JobRunner;
  readonly queue: JobQueue;
  /** What job handlers see of the server. */
  readonly env: ToolEnvironment;
  /** One client's view of its own jobs (every client's with `allJobs`: the `jobs:all` scope). */
  access(clientId: string, options?: AccessOptions): JobAccess;
  /**
   * Stores a new job and hands it to the queue (what answering `accepted`
   * needs). With an idempotency key already used for the same tool, the
   * existing job (`created: false`); its args differ: `conflict`. A job that
   * was stored but could not be queued is ended (`unavailable`), so it does
   * not sit queued forever, and the error is rethrown.
   */
  submit(job: Omit<NewJob, "id">): Promise<{ job: JobRecord; created: boolean; conflict: boolean }>;
  /** Long polls held open now. */
  readonly heldPolls: () => number;
  /** Answers every held long poll at once (the job as it is): the first step of a graceful close. */
  drain(): void;
  /** Resolves once no long poll is held, or after `maxMs`. */
  pollsAnswered(maxMs: number): Promise<void>;
  /** Stops taking work; jobs running here go back to `queued`. Does not close the store. */
  close(): Promise<void>;
}

/** Wires store, runner and queue the same way for a server and a worker (`createServer`, `createWorker`). */
export function createJobEngine(options: JobEngineOptions): JobEngine {
  const { store, tools } = options;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const report = (error: unknown, context: Omit<ErrorContext, "phase"> = {}) => {
    try {
      options.onError?.(error, { phase: "job", ...context });
    } catch {
      // A failing logger must not stop the jobs.
    }
  };
  let queue: JobQueue | undefined;
  const slots = new LongPollSlots(options.longPoll);
  const draining = new AbortController();
  setMaxListeners(0, draining.signal); // each held poll listens for the drain until it answers
  const access = (clientId: string, options?: AccessOptions) =>
    jobAccessFor(store, queue as JobQueue, clientId, { slots, drain: draining.signal }, options);
  const env: ToolEnvironment = { server: options.server, tools: () => tools.describe(), jobsFor: access };
  const runner = new JobRunner({
    store,
    tools,
    env,
    workerId: options.workerId ?? newWorkerId(),
    onError: report,
    leaseMs: options.leaseMs,
    now: options.now,
    onJob: options.onJob,
    runs: options.runs ?? new ToolRuns(),
    hideToolErrors: options.hideToolErrors,
  });
  const onError = (error: unknown) => report(error);
  const deps = { runner, store, tools, concurrency, execute: options.execute ?? true, onError };
  queue = options.queue ? options.queue(deps) : new ClaimingJobQueue(deps);
  const retention = startRetention(store, options.sweepEveryMs ?? 60_000, onError);
  const offers = options.execute === false ? undefined : startOffers(store, runner.workerId, tools.jobToolNames(), onError);
  return {
    store,
    runner,
    queue,
    env,
    access,
    submit: async (input) => {
      const created = await store.create({ id: randomUUID(), ...input });
      const { job } = created;
      if (!created.created) {
        return { job, created: false, conflict: canonicalize(job.args) !== canonicalize(input.args) };
      }
      try {
        await (queue as JobQueue).enqueue(job);
      } catch (error) {
        // Best effort: the store may be down too, and then the lease-less queued job is swept with it.
        await store
          .finish(job.id, { state: "error", error: { code: "unavailable", message: "the job could not be queued" } })
          .catch(() => undefined);
        throw error;
      }
      options.onJob?.({ jobId: job.id, tool: job.tool, clientId: job.clientId, event: "accepted" });
      return { job, created: true, conflict: false };
    },
    heldPolls: () => slots.held,
    drain: () => draining.abort(),
    pollsAnswered: (maxMs) => slots.idle(maxMs),
    close: async () => {
      draining.abort();
      clearInterval(retention);
      clearInterval(offers);
      await (queue as JobQueue).close();
    },
  };
}

/**
 * Retention, owned here for every store: finished jobs past their retention
 * are deleted (with their idempotency keys and quota use) on a timer.
 * Every process with a job store sweeps; each sweep is a compare-and-delete,
 * so several processes sweeping one store is safe.
 */
function startRetention(store: JobStore, everyMs: number, onError: (error: unknown) => void): NodeJS.Timeout | undefined {
  if (everyMs <= 0) return undefined;
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    store
      .sweep()
      .catch(onError)
      .finally(() => {
        sweeping = false;
      });
  }, everyMs);
  timer.unref();
  return timer;
}

// A process that runs jobs says so every few seconds; its word lasts three times as long.
const OFFER_EVERY_MS = 5_000;
const OFFER_TTL_MS = 15_000;

/** Announces, on a timer, the job tools this process runs (see `JobStore.announce`). */
function startOffers(
  store: JobStore,
  workerId: string,
  tools: string[],
  onError: (error: unknown) => void,
): NodeJS.Timeout | undefined {
  if (tools.length === 0) return undefined;
  const announce = () => void store.announce(workerId, tools, OFFER_TTL_MS).catch(onError);
  announce();
  const timer = setInterval(announce, OFFER_EVERY_MS);
  timer.unref();
  return timer;
}
