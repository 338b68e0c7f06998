import { SmcpError, storeUnavailable } from "../protocol/errors.js";
import type { JobAccess, JobView } from "../tools/define.js";
import { trace as otelTrace, parseTraceparent } from "../util/trace.js";
import { isFinal } from "./policy.js";
import type { JobQueue } from "./queue.js";
import type { JobRecord, JobStore } from "./store.js";

/** Runs a store operation; a failure that is not a protocol error becomes `unavailable` (fail closed). */
export async function guardStore<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw storeUnavailable(error);
  }
}

/** Limits on long polls held open at once (SPEC §8). */
export interface LongPollLimits {
  /** Held polls per client; past it a poll with `wait_ms` is `rate_limited`. Default 64. */
  perClient?: number;
  /** Held polls in this process. Default 2,048. */
  perProcess?: number;
}

/** Counts held long polls, per client and in all; each one holds a slot until it answers. */
export class LongPollSlots {
  readonly #byClient = new Map<string, number>();
  readonly #perClient: number;
  readonly #perProcess: number;
  #total = 0;
  readonly #idle = new Set<() => void>();

  constructor(limits: LongPollLimits = {}) {
    this.#perClient = limits.perClient ?? 64;
    this.#perProcess = limits.perProcess ?? 2048;
  }

  /** Takes a slot, or throws `rate_limited`; call the returned function to give it back. */
  acquire(clientId: string, perClient = this.#perClient): () => void {
    const held = this.#byClient.get(clientId) ?? 0;
    if (held >= perClient || this.#total >= this.#perProcess) {
      throw new SmcpError("rate_limited", "too many long polls held open; poll without wait_ms or retry later", {
        details: { reason: "long_polls", retry_after_ms: 1000 },
      });
    }
    this.#byClient.set(clientId, held + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byClient.get(clientId) ?? 1) - 1;
      if (left === 0) this.#byClient.delete(clientId);
      else this.#byClient.set(clientId, left);
      if (this.#total === 0) for (const wake of [...this.#idle]) wake();
    };
  }

  /**
   * Resolves once no poll is held (at once if none is) and the answers of
   * the last ones have been built (a turn of the event loop later), or after `maxMs`.
   */
  idle(maxMs: number): Promise<void> {
    if (this.#total === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#idle.delete(done);
        setImmediate(resolve);
      };
      const timer = setTimeout(done, maxMs);
      timer.unref();
      this.#idle.add(done);
    });
  }

  /** Polls held now. */
  get held(): number {
    return this.#total;
  }
}

/** A job as tools and clients see it (no args, worker or lease). */
function toView(job: JobRecord | undefined, unserved = false): JobView | undefined {
  if (!job) return undefined;
  const { id, tool, state, progress, result, error, attempts, createdAt, updatedAt, version } = job;
  const view = { id, tool, state, progress, result, error, attempts, createdAt, updatedAt, version };
  return unserved ? { ...view, unserved } : view;
}

/**
 * A poll (and a cancel) reads a job the call that started it traced: the span in force links to
 * that call's context (SPEC §10), and names the job. Nothing without a recording span.
 */
function linkToJob(job: JobRecord | undefined): void {
  if (!job) return;
  const span = otelTrace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.setAttribute("smcp.job.id", job.id);
  const linked = job.trace ? parseTraceparent(job.trace) : undefined;
  if (linked) span.addLink({ context: linked, attributes: { "smcp.job.id": job.id } });
}

/** What long polls of one process share: the slots, and the signal that ends them all (shutdown). */
export interface LongPolling {
  slots: LongPollSlots;
  /** Aborts when the server begins to close: held polls answer at once with the job as it is. */
  drain: AbortSignal;
}

/** What one client's view of the jobs may reach, from its registry record. */
export interface AccessOptions {
  /** `jobs:all` (SPEC §9): every client's jobs, not only its own. */
  allJobs?: boolean;
  /** Long polls this client may hold at once (its `max_held_polls`); default: the server's per-client cap. */
  maxHeldPolls?: number | undefined;
}

/** One client's view of the jobs: another client's job reads as absent (unless the client has `jobs:all`). */
export function jobAccessFor(
  store: JobStore,
  queue: JobQueue,
  clientId: string,
  polling: LongPolling,
  options: AccessOptions = {},
): JobAccess {
  const all = options.allJobs === true;
  const own = async (jobId: string): Promise<JobRecord | undefined> => {
    const job = await guardStore(() => store.get(jobId));
    return job && (all || job.clientId === clientId) ? job : undefined;
  };
  // A queued job whose tool no live process takes says so (poll_job shows it), instead of waiting silently.
  const withOffer = async (job: JobRecord | undefined) =>
    toView(job, job?.state === "queued" && !(await guardStore(() => store.isOffered(job.tool))));
  return {
    get: async (jobId, wait) => {
      let job = await own(jobId);
      linkToJob(job);
      const waitMs = wait?.waitMs ?? 0;
      // The version the caller last saw (default: this one): a job already past it is answered at once.
      const seen = wait?.version ?? job?.version;
      if (!job || isFinal(job.state) || waitMs <= 0 || job.version !== seen || polling.drain.aborted) return withOffer(job);
      const release = polling.slots.acquire(clientId, options.maxHeldPolls);
      // The wait ends at wait_ms or at the drain. A plain timer and listener, both removed when the
      // poll answers: AbortSignal.timeout/any would keep a timer and a signal per poll until wait_ms.
      const deadline = new AbortController();
      const end = () => deadline.abort();
      const timer = setTimeout(end, waitMs);
      polling.drain.addEventListener("abort", end, { once: true });
      try {
        while (job && job.version === seen && !deadline.signal.aborted) {
          await guardStore(() => store.watch(jobId, seen, deadline.signal));
          job = await own(jobId);
        }
        return withOffer(job);
      } finally {
        clearTimeout(timer);
        polling.drain.removeEventListener("abort", end);
        release();
      }
    },
    list: async ({ clientId: only, ...filter } = {}) => {
      // This client's own jobs; with `jobs:all` (SPEC §9) every client's, or one client's when asked.
      // Without it, asking for another client's jobs lists nothing (it says nothing of that client).
      if (!all && only !== undefined && only !== clientId) return [];
      const whose = all ? only : clientId;
      const jobs = await guardStore(() => store.list({ ...filter, ...(whose === undefined ? {} : { clientId: whose }) }));
      return jobs.map((job) => ({ ...(toView(job) as JobView), ...(all ? { clientId: job.clientId } : {}) }));
    },
    cancel: async (jobId) => {
      const job = await own(jobId);
      linkToJob(job);
      if (!job) return undefined;
      const after = await guardStore(() => store.cancel(jobId));
      // Stop it here if this process runs it. Whether it was queued or running when read: a claim may have come
      // between that read and the cancel (a queued job aborted here is a no-op).
      if ((job.state === "running" || job.state === "queued") && after?.state === "cancelled") {
        await guardStore(() => queue.abort(jobId));
      }
      return toView(after);
    },
  };
}
