import type { JobRunner } from "./runner.js";
import type { JobRecord } from "./store.js";

/** Hands stored jobs to whatever executes them: this process, or workers elsewhere. */
export interface JobQueue {
  /** Schedules a stored, `queued` job. Throws when the queue is unreachable. */
  enqueue(job: JobRecord): Promise<void>;
  /** Asks whichever worker holds the job to abort it (after the store says `cancelled`). */
  abort(jobId: string): Promise<void>;
  /** Stops taking work; jobs running here are aborted and go back to `queued`. */
  close(): Promise<void>;
}

/** Options for {@link LocalJobQueue}. */
export interface LocalJobQueueOptions {
  runner: JobRunner;
  /** Jobs run at once; the rest wait, `queued`. Default 32. */
  concurrency?: number;
  onError?: ((error: unknown) => void) | undefined;
}

/** Runs jobs in this process, at most `concurrency` at a time, first in first out. */
export class LocalJobQueue implements JobQueue {
  readonly #runner: JobRunner;
  readonly #concurrency: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #running = new Set<Promise<void>>();
  #pending: string[] = [];
  #head = 0;
  #closed = false;

  constructor(options: LocalJobQueueOptions) {
    this.#runner = options.runner;
    this.#concurrency = options.concurrency ?? 32;
    this.#onError = options.onError;
  }

  async enqueue(job: JobRecord): Promise<void> {
    if (this.#closed) throw new Error("the job queue is closed");
    this.#pending.push(job.id);
    this.#pump();
  }

  async abort(jobId: string): Promise<void> {
    this.#runner.abort(jobId, "cancelled");
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = [];
    this.#head = 0;
    this.#runner.abortAll();
    await Promise.allSettled([...this.#running]);
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#head < this.#pending.length) {
      const id = this.#pending[this.#head++] as string;
      if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
        this.#pending = this.#pending.slice(this.#head);
        this.#head = 0;
      }
      const run: Promise<void> = this.#runner
        .run(id)
        .catch((error: unknown) => this.#onError?.(error))
        .finally(() => {
          this.#running.delete(run);
          if (!this.#closed) this.#pump();
        });
      this.#running.add(run);
    }
  }
}
