import type { ToolRegistry } from "../tools/registry.js";
import type { JobQueue } from "./queue.js";
import { type JobRunner, recoverStaleJobs } from "./runner.js";
import type { JobRecord, JobStore } from "./store.js";

/** Options for {@link PollingJobQueue}. */
export interface PollingJobQueueOptions {
  runner: JobRunner;
  store: JobStore;
  tools: ToolRegistry;
  /** Jobs run at once in this process. Default 32. */
  concurrency?: number;
  /** How often to look for work queued by other processes, in ms. Default 250. */
  pollMs?: number;
  /** How often to requeue jobs whose worker died (lease lapsed), in ms. Default 1,000. */
  recoverMs?: number;
  onError?: ((error: unknown) => void) | undefined;
  now?: () => number;
}

/**
 * The store is the queue: every process claims the oldest queued job
 * (compare-and-set) when it has room, so any process on the host runs any
 * job, and jobs queued or orphaned by a process that died are picked up by
 * the others or at the next start. Used with SQLite.
 */
export class PollingJobQueue implements JobQueue {
  readonly #o: Required<Omit<PollingJobQueueOptions, "onError">> & { onError?: ((error: unknown) => void) | undefined };
  readonly #running = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #closed = false;
  #nextRecovery = 0;
  readonly #loop: Promise<void>;

  constructor(options: PollingJobQueueOptions) {
    this.#o = { concurrency: 32, pollMs: 250, recoverMs: 1000, now: Date.now, ...options };
    this.#loop = this.#run();
  }

  async enqueue(_job: JobRecord): Promise<void> {
    this.#wake?.();
  }

  async abort(jobId: string): Promise<void> {
    // Here at once; in another process, through its next heartbeat.
    this.#o.runner.abort(jobId, "cancelled");
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
    this.#o.runner.abortAll();
    await Promise.allSettled([...this.#running]);
  }

  async #run(): Promise<void> {
    const { runner, store, tools, concurrency, pollMs, recoverMs, now } = this.#o;
    while (!this.#closed) {
      try {
        if (now() >= this.#nextRecovery) {
          this.#nextRecovery = now() + recoverMs;
          await recoverStaleJobs(store, tools, now(), async () => {});
        }
        while (this.#running.size < concurrency && !this.#closed) {
          const job = await store.claim(runner.workerId, runner.leaseFromNow());
          if (!job) break;
          const run: Promise<void> = runner
            .runClaimed(job)
            .catch((error: unknown) => this.#o.onError?.(error))
            .finally(() => {
              this.#running.delete(run);
              this.#wake?.();
            });
          this.#running.add(run);
        }
      } catch (error) {
        this.#o.onError?.(error); // store unreachable: try again on the next tick
      }
      if (this.#closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        timer.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}
