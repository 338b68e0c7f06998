import type { JobRecord, JobStore } from "../stores/jobs.js";
import type { ToolRegistry } from "../tools/registry.js";
import { type JobRunner, recoverOrphans, recoverStaleJobs } from "./runner.js";

/** Hands stored jobs to whatever executes them: this process, or workers elsewhere. */
export interface JobQueue {
  /** Schedules a stored, `queued` job. Throws when the queue is unreachable. */
  enqueue(job: JobRecord): Promise<void>;
  /** Asks whichever worker holds the job to abort it (after the store says `cancelled`). */
  abort(jobId: string): Promise<void>;
  /** Stops taking work; jobs running here are aborted and go back to `queued`. */
  close(): Promise<void>;
}

/** What a job queue factory is given by the job engine. */
export interface JobQueueDeps {
  runner: JobRunner;
  store: JobStore;
  tools: ToolRegistry;
  /** Jobs to run at once in this process. */
  concurrency: number;
  /** False for an API process that only enqueues (workers elsewhere run the jobs). */
  execute: boolean;
  onError: (error: unknown) => void;
}

/** Makes the queue a store's jobs go through (see `OpenedStores.jobQueue`). */
export type JobQueueFactory = (deps: JobQueueDeps) => JobQueue;

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
  now?: () => number;
}

/**
 * The store is the queue: the process claims the next queued job (lowest
 * turn, then oldest: fair across clients; compare-and-set, so processes
 * sharing the store never take one job twice) whenever it has room, and
 * only jobs of the tools it has. Used with memory (woken by enqueues) and
 * SQLite (also polling for jobs other processes queued or orphaned).
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
        while (this.#running.size < concurrency && !this.#closed) {
          const job = await store.claim(runner.workerId, runner.leaseFromNow(), this.#tools);
          if (!job) break;
          const run: Promise<void> = runner
            .runClaimed(job)
            .catch((error: unknown) => this.#o.onError(error))
            .finally(() => {
              this.#running.delete(run);
              this.#poke();
            });
          this.#running.add(run);
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
