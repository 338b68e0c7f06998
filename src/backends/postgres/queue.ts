import { ClaimingJobQueue } from "../../jobs/claiming-queue.js";
import type { JobQueue, JobQueueDeps } from "../../jobs/queue.js";
import type { JobRecord } from "../../jobs/store.js";
import type { PostgresConnection } from "./connection.js";
import { eventsChannel } from "./jobs.js";

/** Options for {@link PostgresJobQueue}. */
export interface PostgresJobQueueOptions extends JobQueueDeps {
  connection: PostgresConnection;
  /** The schema the job store's tables are in. */
  schema: string;
  /**
   * How often to look for jobs even without a NOTIFY, ms: the backstop for a
   * wake lost while the LISTEN connection was down, and the pace of recovery
   * of jobs whose worker died. Default 1,000.
   */
  pollMs?: number;
}

/**
 * The PostgreSQL store is the queue: each process claims the next queued
 * job of its tools (`FOR UPDATE SKIP LOCKED`, lowest turn first) through a
 * {@link ClaimingJobQueue}. It does not poll blindly: the store NOTIFYs
 * each queued job (`q:TOOL`) and each cancel (`c:ID`) when it commits, so
 * idle workers claim at once and the process running a cancelled job
 * aborts it at once (the lease heartbeat stays the backstop). An API
 * process that runs no jobs does not listen.
 */
export class PostgresJobQueue implements JobQueue {
  readonly #inner: ClaimingJobQueue;
  readonly #unsubscribe: (() => Promise<void>) | undefined;

  constructor(options: PostgresJobQueueOptions) {
    const { connection, schema, pollMs = 1000, ...deps } = options;
    // One claim at a time: each is a transaction on a pooled connection of its own (no commit to share, as
    // SQLite's group commit shares one), and claims asked at once would take the pool from the requests.
    this.#inner = new ClaimingJobQueue({ ...deps, pollMs, claimsAtOnce: 1 });
    const tools = new Set(deps.execute ? deps.tools.jobToolNames() : []);
    if (tools.size === 0) return;
    const wake = () => this.#inner.wake();
    // Subscribed at once; while the LISTEN connection is down, the poll still finds jobs and the heartbeat carries cancels.
    this.#unsubscribe = connection.subscribe(eventsChannel(schema), {
      message: (payload) => {
        if (payload.startsWith("q:")) {
          if (tools.has(payload.slice(2))) wake();
        } else if (payload.startsWith("c:")) {
          deps.runner.abort(payload.slice(2), "cancelled");
        }
      },
      // Wakes may have been missed while nobody listened: look for jobs now.
      lost: wake,
    });
  }

  enqueue(job: JobRecord): Promise<void> {
    // Other processes were woken by the store's NOTIFY; this one is woken here.
    return this.#inner.enqueue(job);
  }

  abort(jobId: string): Promise<void> {
    // Here at once; in the process running it, through the store's cancel NOTIFY.
    return this.#inner.abort(jobId);
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.();
    await this.#inner.close();
  }
}
