import type { JobQueue, JobQueueDeps } from "./queue.js";
import { recoverOrphans, recoverStaleJobs } from "./recovery.js";
import type { JobRecord } from "./store.js";

// The most claims asked for at once by default (bounded, so a large --concurrency never asks thousands at a time).
const CLAIMS_AT_ONCE = 32;

/** Options for {@link ClaimingJobQueue}. */
export interface ClaimingJobQueueOptions extends JobQueueDeps {
  /**
   * Also look for jobs other processes queued (a store shared by processes:
   * SQLite), this often in ms; and requeue jobs whose worker died. Undefined:
   * this process owns the store (memory) and is woken by its own enqueues.
   */
  pollMs?: number | undefined;
  /** With `pollMs`: how often to requeue jobs whose worker died (lease lapsed), ms. Default 1,000. */
  recoverMs?: number;
  /**
   * The most claims asked for at once while a backlog lasts (rounds of 1, 2, 4, ... up to it). Default 32;
   * 1 asks one at a time (a store whose every claim holds a pooled connection of its own).
   */
  claimsAtOnce?: number;
  now?: () => number;
}

/**
 * The store is the queue: the process claims the next queued job (lowest
 * turn, then oldest: fair across clients; compare-and-set, so processes
 * sharing the store never take one job twice) whenever it has room, and
 * only jobs of the tools it has. Used with memory (woken by enqueues),
 * SQLite (also polling for jobs other processes queued or orphaned), and
 * PostgreSQL and Redis with `queue=store` (also woken by the store's
 * NOTIFY or pub/sub).
 */
export class ClaimingJobQueue implements JobQueue {
  readonly #o: ClaimingJobQueueOptions;
  readonly #tools: string[];
  readonly #running = new Set<Promise<void>>();
  readonly #now: () => number;
  #wanted = true;
  #wake: (() => void) | undefined;
  #closed = false;
  #nextRecovery = 0;
  readonly #loop: Promise<void>;

  constructor(options: ClaimingJobQueueOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#tools = options.execute ? options.tools.jobToolNames() : [];
    this.#loop = this.#tools.length > 0 ? this.#run() : Promise.resolve();
  }

  async enqueue(_job: JobRecord): Promise<void> {
    this.#poke();
  }

  /** Looks for queued jobs now, rather than at the next poll (another process says it queued one). */
  wake(): void {
    this.#poke();
  }

  async abort(jobId: string): Promise<void> {
    // Here at once; in another process, through its next heartbeat.
    this.#o.runner.abort(jobId, "cancelled");
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#poke();
    await this.#loop;
    this.#o.runner.abortAll();
    await Promise.allSettled([...this.#running]);
  }

  // A wake that arrives while the loop is busy is remembered, never lost.
  #poke(): void {
    this.#wanted = true;
    this.#wake?.();
  }

  #start(job: JobRecord): void {
    const run: Promise<void> = this.#o.runner
      .runClaimed(job)
      .catch((error: unknown) => this.#o.onError(error))
      .finally(() => {
        this.#running.delete(run);
        this.#poke();
      });
    this.#running.add(run);
  }

  async #run(): Promise<void> {
    const { runner, store, tools, concurrency, pollMs } = this.#o;
    if (pollMs !== undefined) {
      await recoverOrphans(store, tools, async () => {}).catch((error: unknown) => this.#o.onError(error));
    }
    while (!this.#closed) {
      this.#wanted = false;
      try {
        if (pollMs !== undefined && this.#now() >= this.#nextRecovery) {
          this.#nextRecovery = this.#now() + (this.#o.recoverMs ?? 1000);
          await recoverStaleJobs(store, tools, this.#now(), async () => {});
        }
        // Claims asked at once, doubling while each round finds a job for every claim (a backlog), back to one
        // when a round comes up short: a store that commits a turn's writes together (SQLite) takes a backlog in
        // few commits, and an empty queue still costs one claim per wake. Each claim is its own compare-and-set,
        // in fair-turn order.
        let ask = 1;
        while (this.#running.size < concurrency && !this.#closed) {
          const asked = Math.min(concurrency - this.#running.size, ask);
          const claims = Array.from({ length: asked }, () => store.claim(runner.workerId, runner.leaseFromNow(), this.#tools));
          let found = 0;
          let failure: { reason: unknown } | undefined;
          for (const outcome of await Promise.allSettled(claims)) {
            if (outcome.status === "rejected") failure ??= { reason: outcome.reason };
            else if (outcome.value) {
              found++;
              this.#start(outcome.value); // claimed, so run here even if another claim failed
            }
          }
          if (failure) throw failure.reason;
          if (found < asked) break;
          ask = Math.min(ask * 2, this.#o.claimsAtOnce ?? CLAIMS_AT_ONCE);
        }
      } catch (error) {
        this.#o.onError(error); // store unreachable: try again on the next tick
      }
      if (this.#closed) break;
      if (this.#wanted) continue;
      await new Promise<void>((resolve) => {
        const timer = pollMs === undefined ? undefined : setTimeout(resolve, pollMs);
        timer?.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}
