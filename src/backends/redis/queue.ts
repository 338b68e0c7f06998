import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { JobQueue, JobQueueDeps } from "../../jobs/queue.js";
import { recoverOrphans, recoverStaleJobs } from "../../jobs/recovery.js";
import type { JobRecord } from "../../jobs/store.js";
import { redisQueueChannels } from "./jobs.js";

// BullMQ's highest priority number (2^21 - 1).
const MAX_PRIORITY = 2_097_151;

/** Connections a {@link BullJobQueue} uses; it closes them on `close()`. */
export interface BullConnections {
  /** Producer, shared by the per-tool queues (fails fast when Redis is down). */
  queue: Redis;
  /**
   * Publishes cancels from `abort()`, for a job store other than
   * `RedisJobStore` under the same prefix (whose cancel script publishes
   * them itself, so `openRedisStores` passes none). Closed on `close()`.
   */
  publisher?: Redis;
  /** Opens another connection (blocking: for a BullMQ worker or a subscriber); used only by a process that runs jobs. */
  open(blocking: boolean): Promise<Redis>;
}

/** Options for {@link BullJobQueue}. */
export interface BullJobQueueOptions extends JobQueueDeps {
  connections: BullConnections;
  /** Key prefix; BullMQ's keys go under `{prefix}bull`. */
  prefix: string;
  /** How often a worker requeues jobs whose worker died (lease lapsed), ms. Default 1,000. */
  recoverMs?: number;
  now?: () => number;
}

/**
 * Jobs through BullMQ on Redis, one BullMQ queue per job tool: API replicas
 * enqueue, and a worker process takes jobs only from the queues of the tools
 * it has, so a job waits for a worker that can run it instead of failing on
 * one that cannot. What BullMQ lacks, smcp adds on top: cancellation
 * reaches the worker holding a job (pub/sub, and the heartbeat as a
 * backstop); a job whose worker died is requeued from its lapsed lease by
 * any live worker and dispatched again (at-least-once); the job's state and
 * a late finish are guarded by the store's compare-and-set, so a duplicate
 * delivery never runs a job twice at once.
 */
export class BullJobQueue implements JobQueue {
  readonly #o: BullJobQueueOptions;
  readonly #bullPrefix: string;
  readonly #queues = new Map<string, Queue>();
  readonly #workers: Worker[] = [];
  readonly #opened: Redis[] = [];
  readonly #channel: string;
  readonly #active = new Set<string>();
  // Jobs BullMQ handed to this worker after it began closing: left queued in the store, dispatched again on close.
  readonly #handedBack = new Set<string>();
  readonly #started: Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: BullJobQueueOptions) {
    this.#o = options;
    this.#bullPrefix = `${options.prefix}bull`;
    this.#channel = redisQueueChannels(options.prefix).cancel;
    const tools = options.execute ? options.tools.jobToolNames() : [];
    this.#started = tools.length > 0 ? this.#startWorkers(tools) : Promise.resolve();
  }

  async enqueue(job: JobRecord): Promise<void> {
    // One BullMQ job per attempt; the store decides whether it still runs. BullMQ's priority is
    // the job's fair turn (1 for a client with no other open job), so one client's flood queues
    // behind every other client's next job.
    await this.#queue(job.tool).add(
      "run",
      { jobId: job.id },
      {
        jobId: `${job.id}-a${job.attempts}`,
        priority: Math.min(job.turn, MAX_PRIORITY),
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async abort(jobId: string): Promise<void> {
    // Here at once; elsewhere the store's cancel script has published the id to the worker running it (or, for
    // another store, the publisher given does).
    this.#o.runner.abort(jobId, "cancelled");
    await this.#o.connections.publisher?.publish(this.#channel, jobId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#started;
    clearInterval(this.#timer);
    const held = [...this.#active];
    this.#o.runner.abortAll(); // running jobs go back to queued in the store
    await Promise.allSettled(this.#workers.map((worker) => worker.close()));
    // Dispatch the jobs this worker gave back, so another worker takes them now.
    for (const id of new Set([...held, ...this.#handedBack])) {
      const job = await this.#o.store.get(id).catch(() => undefined);
      if (job?.state === "queued") await this.enqueue(job).catch((error: unknown) => this.#o.onError(error));
    }
    await Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    for (const connection of [this.#o.connections.queue, this.#o.connections.publisher, ...this.#opened])
      connection?.disconnect();
  }

  #queue(tool: string): Queue {
    let queue = this.#queues.get(tool);
    if (!queue) {
      queue = new Queue(`jobs.${tool}`, { connection: this.#o.connections.queue, prefix: this.#bullPrefix });
      queue.on("error", (error) => this.#o.onError(error));
      queue.setMaxListeners(0); // each concurrent add waits on "closing"
      this.#queues.set(tool, queue);
    }
    return queue;
  }

  async #startWorkers(tools: string[]): Promise<void> {
    const { runner, store, connections, onError } = this.#o;
    await recoverOrphans(store, this.#o.tools, (job) => this.enqueue(job)).catch((error: unknown) => onError(error));
    try {
      const subscriber = await connections.open(true);
      this.#opened.push(subscriber);
      subscriber.on("message", (_channel: string, jobId: string) => runner.abort(jobId, "cancelled"));
      await subscriber.subscribe(this.#channel);
      for (const tool of tools) {
        if (this.#closed) return;
        const connection = await connections.open(true);
        this.#opened.push(connection);
        const worker = new Worker(
          `jobs.${tool}`,
          async (bullJob) => {
            const id = String((bullJob.data as { jobId: string }).jobId);
            this.#active.add(id);
            try {
              // BullMQ still hands over a job it fetched before close(); the runner then leaves it queued.
              if (!(await runner.run(id))) this.#handedBack.add(id);
            } finally {
              this.#active.delete(id);
            }
          },
          { connection, prefix: this.#bullPrefix, concurrency: this.#o.concurrency },
        );
        worker.on("error", (error) => onError(error));
        this.#workers.push(worker);
      }
    } catch (error) {
      onError(error);
    }
    if (this.#closed) return;
    const now = this.#o.now ?? Date.now;
    this.#timer = setInterval(() => {
      recoverStaleJobs(store, this.#o.tools, now(), (job) => this.enqueue(job)).catch((error: unknown) => onError(error));
    }, this.#o.recoverMs ?? 1000);
    this.#timer.unref();
  }
}
