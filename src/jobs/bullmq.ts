import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { ToolRegistry } from "../tools/registry.js";
import type { JobQueue } from "./queue.js";
import { type JobRunner, recoverStaleJobs } from "./runner.js";
import type { JobRecord, JobStore } from "./store.js";

/** Connections a {@link BullJobQueue} uses; it closes them on `close()`. */
export interface BullConnections {
  /** Producer (fails fast when Redis is down). */
  queue: Redis;
  /** Publishes cancellations. */
  publisher: Redis;
  /** With a runner: the BullMQ worker's (blocking) connection and the cancellation subscriber. */
  worker?: Redis;
  subscriber?: Redis;
}

/** Options for {@link BullJobQueue}. */
export interface BullJobQueueOptions {
  connections: BullConnections;
  /** Key prefix; BullMQ's keys go under `{prefix}bull`. */
  prefix: string;
  store: JobStore;
  tools: ToolRegistry;
  /** Given: this process also executes jobs (a BullMQ worker). */
  runner?: JobRunner | undefined;
  /** Jobs run at once by this process's worker. Default 32. */
  concurrency?: number;
  /** How often a worker requeues jobs whose worker died (lease lapsed), ms. Default 1,000. */
  recoverMs?: number;
  onError?: ((error: unknown) => void) | undefined;
  now?: () => number;
}

const QUEUE = "jobs";

/**
 * Jobs through BullMQ on Redis: API replicas enqueue, workers (any process
 * with a runner) execute. What BullMQ lacks, smcp adds on top:
 * cancellation reaches the worker holding a job (pub/sub, and the
 * heartbeat as a backstop); a job whose worker died is requeued from its
 * lapsed lease by any live worker and dispatched again (at-least-once);
 * the job's state and a late finish are guarded by the store's
 * compare-and-set, so a duplicate delivery never runs a job twice at once.
 */
export class BullJobQueue implements JobQueue {
  readonly #o: BullJobQueueOptions;
  readonly #queue: Queue;
  readonly #worker: Worker | undefined;
  readonly #channel: string;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #active = new Set<string>();

  constructor(options: BullJobQueueOptions) {
    this.#o = options;
    const bullPrefix = `${options.prefix}bull`;
    this.#channel = `${options.prefix}cancel`;
    this.#queue = new Queue(QUEUE, { connection: options.connections.queue, prefix: bullPrefix });
    this.#queue.on("error", (error) => options.onError?.(error));
    this.#queue.setMaxListeners(0); // each concurrent add waits on "closing"
    const { runner } = options;
    if (runner && options.connections.worker) {
      this.#worker = new Worker(
        QUEUE,
        async (job) => {
          const id = String((job.data as { jobId: string }).jobId);
          this.#active.add(id);
          try {
            await runner.run(id);
          } finally {
            this.#active.delete(id);
          }
        },
        { connection: options.connections.worker, prefix: bullPrefix, concurrency: options.concurrency ?? 32 },
      );
      this.#worker.on("error", (error) => options.onError?.(error));
      const subscriber = options.connections.subscriber;
      if (subscriber) {
        subscriber.on("message", (_channel: string, jobId: string) => runner.abort(jobId, "cancelled"));
        void subscriber.subscribe(this.#channel).catch((error: unknown) => options.onError?.(error));
      }
      const now = options.now ?? Date.now;
      this.#timer = setInterval(() => {
        recoverStaleJobs(options.store, options.tools, now(), (job) => this.enqueue(job)).catch((error: unknown) =>
          options.onError?.(error),
        );
      }, options.recoverMs ?? 1000);
      this.#timer.unref();
    }
  }

  async enqueue(job: JobRecord): Promise<void> {
    // One BullMQ job per attempt; the store decides whether it still runs.
    await this.#queue.add(
      "run",
      { jobId: job.id },
      { jobId: `${job.id}-a${job.attempts}`, removeOnComplete: true, removeOnFail: true },
    );
  }

  async abort(jobId: string): Promise<void> {
    this.#o.runner?.abort(jobId, "cancelled");
    await this.#o.connections.publisher.publish(this.#channel, jobId);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const held = [...this.#active];
    this.#o.runner?.abortAll(); // running jobs go back to queued in the store
    await this.#worker?.close();
    // Dispatch the jobs this worker gave back, so another worker takes them now.
    for (const id of held) {
      const job = await this.#o.store.get(id).catch(() => undefined);
      if (job?.state === "queued") await this.enqueue(job).catch((error: unknown) => this.#o.onError?.(error));
    }
    await this.#queue.close();
    const { queue, publisher, worker, subscriber } = this.#o.connections;
    for (const connection of [queue, publisher, worker, subscriber]) connection?.disconnect();
  }
}
