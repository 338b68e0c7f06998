import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { ClaimingJobQueue } from "../../jobs/claiming-queue.js";
import type { JobQueue, JobQueueDeps } from "../../jobs/queue.js";
import type { JobRecord } from "../../jobs/store.js";
import { redisQueueChannels } from "./jobs.js";

/** Options for {@link RedisClaimQueue}. */
export interface RedisClaimQueueOptions extends JobQueueDeps {
  /** How it opens the connection it subscribes on (closed on `close()`). */
  connections: {
    /** Opens another connection (a worker's subscriber: `blocking`, it retries while Redis is away). */
    open(blocking: boolean): Promise<Redis>;
  };
  /** The job store's key prefix (the channels are under it). */
  prefix: string;
  /**
   * How often to look for jobs even without a wake, ms: the backstop for a
   * wake lost while the subscriber was down, and the pace of recovery of
   * jobs whose worker died. Default 1,000.
   */
  pollMs?: number;
}

/**
 * The Redis job store is the queue (`redis://…?queue=store`): each process
 * claims the next queued job of its tools (lowest turn first, one script per
 * claim: lua/claim.lua) through a {@link ClaimingJobQueue}, as the SQL
 * stores do, instead of dispatching through BullMQ. It does not poll
 * blindly: the store publishes each queued job's tool (`q:TOOL`) from the
 * script that queued it, so idle workers claim at once, and the script that
 * cancels a running job publishes its id to the process running it (the
 * lease heartbeat stays the backstop for both). An API process that runs
 * no jobs does not subscribe.
 */
export class RedisClaimQueue implements JobQueue {
  readonly #inner: ClaimingJobQueue;
  readonly #connections: RedisClaimQueueOptions["connections"];
  readonly #subscriber: Promise<Redis | undefined>;
  readonly #stopping = new AbortController();
  // The subscriber being opened or subscribed: close() cuts it at once (a subscribe waits while Redis is away).
  #opening: Redis | undefined;

  constructor(options: RedisClaimQueueOptions) {
    const { connections, prefix, pollMs = 1000, ...deps } = options;
    this.#connections = connections;
    const channels = redisQueueChannels(prefix);
    this.#inner = new ClaimingJobQueue({ ...deps, pollMs });
    const tools = new Set(deps.execute ? deps.tools.jobToolNames() : []);
    this.#subscriber = tools.size === 0 ? Promise.resolve(undefined) : this.#listen(tools, channels, deps);
  }

  // Subscribes, and tries again (backing off up to 30 s) while Redis cannot be reached: meanwhile the poll still
  // finds jobs and the heartbeat still carries cancels.
  async #listen(
    tools: Set<string>,
    channels: { queued: string; cancel: string },
    deps: JobQueueDeps,
  ): Promise<Redis | undefined> {
    for (let attempt = 0; !this.#stopping.signal.aborted; attempt++) {
      let subscriber: Redis | undefined;
      try {
        subscriber = await this.#connections.open(true);
        this.#opening = subscriber;
        if (this.#stopping.signal.aborted) throw new Error("closed");
        subscriber.on("message", (channel: string, message: string) => {
          if (channel === channels.cancel) deps.runner.abort(message, "cancelled");
          else if (message.startsWith("q:") && tools.has(message.slice(2))) this.#inner.wake();
        });
        // ioredis subscribes again after a reconnect; what was published meanwhile is lost, so look for jobs now.
        subscriber.on("ready", () => this.#inner.wake());
        await subscriber.subscribe(channels.queued, channels.cancel);
        // Jobs queued before the subscription took hold were announced to no one here: look now.
        this.#inner.wake();
        return subscriber;
      } catch (error) {
        subscriber?.disconnect();
        if (this.#stopping.signal.aborted) break; // closed meanwhile: nothing went wrong
        if (attempt === 0) deps.onError(error);
        await sleep(Math.min(1000 * 2 ** attempt, 30_000), undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      }
    }
    return undefined;
  }

  enqueue(job: JobRecord): Promise<void> {
    // Other processes were woken by the store's publish; this one is woken here.
    return this.#inner.enqueue(job);
  }

  async abort(jobId: string): Promise<void> {
    // Here at once; elsewhere the store's cancel script has published the id to the process running it.
    await this.#inner.abort(jobId);
  }

  async close(): Promise<void> {
    this.#stopping.abort();
    this.#opening?.disconnect();
    const subscriber = await this.#subscriber;
    subscriber?.disconnect();
    await this.#inner.close();
  }
}
