import { createJobEngine, type ErrorContext } from "../jobs/engine.js";
import type { NonceStore } from "../jobs/nonces.js";
import type { JobQueueFactory } from "../jobs/queue.js";
import type { JobStore } from "../jobs/store.js";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import type { Tool } from "../tools/define.js";
import { ToolRegistry } from "../tools/registry.js";
import { type OverdueEvent, ToolRuns } from "../tools/runs.js";
import { defaultCapabilities } from "./core.js";
import type { JobEvent } from "./observer.js";

/** The stores a worker runs on: what `openStores(url)` returns. */
export interface WorkerStores {
  jobStore: JobStore;
  nonceStore?: NonceStore | undefined;
  /** How jobs are dispatched; a worker needs one that reaches other processes (Redis, SQLite). */
  jobQueue?: JobQueueFactory | undefined;
}

/** Options for {@link createWorker}. */
export interface WorkerOptions {
  /** Opened with `openStores(url)`; must be a store whose jobs can run elsewhere (Redis, SQLite). */
  stores: WorkerStores;
  /** The job tools this worker runs: the same definitions the API servers offer. It takes only their jobs. */
  tools: Iterable<Tool>;
  /** The server id job handlers see in `ctx.server`. Default `smcp-local`. */
  serverId?: string;
  /** Capabilities handlers see in `ctx.server` (as the API servers report them). */
  capabilities?: JsonObject;
  /** Jobs run at once. Default 32. A job whose handler outlives its timeout keeps its slot until it ends. */
  concurrency?: number;
  /** Overdue runs (past their timeout, handler still going) one tool may have before its new runs fail with `unavailable`. Default 32. */
  maxOverdueRuns?: number;
  /** Sees overdue runs begin and end (metrics, logs). */
  onOverdue?: (event: OverdueEvent) => void;
  /** Answer unexpected handler errors with "the tool failed" (see `ServerOptions.hideToolErrors`). */
  hideToolErrors?: boolean;
  /** Lease of a running job, ms (see `JobRunner`). Default 30,000. */
  leaseMs?: number;
  /** How often to delete finished jobs past their retention, ms (0: never). Default 60,000. */
  sweepEveryMs?: number;
  /** Sees each job transition (metrics, logs: `smcp/observe`). */
  onJob?: (event: JobEvent) => void;
  onError?: (error: unknown, context: ErrorContext) => void;
}

/** A job worker without an API: it executes jobs that API replicas enqueued. */
export interface SmcpWorker {
  readonly workerId: string;
  /** The job tools it takes. */
  readonly tools: readonly string[];
  /** Tool code running here, overdue runs counted. */
  readonly runs: ToolRuns;
  /** Stops taking jobs; running ones go back to `queued` for another worker. */
  close(): Promise<void>;
}

/** Starts a worker process's job execution (what `smcp worker` runs). */
export function createWorker(options: WorkerOptions): SmcpWorker {
  const { stores } = options;
  if (!stores.jobQueue) {
    throw new SmcpUsageError(
      "a worker needs a shared store (redis://, postgres:// or sqlite:); memory jobs live in the API process",
    );
  }
  const tools = new ToolRegistry(options.tools);
  const jobTools = tools.jobToolNames();
  if (jobTools.length === 0) throw new SmcpUsageError('a worker needs at least one job tool (kind: "job") to run');
  const runs = new ToolRuns({ maxOverdue: options.maxOverdueRuns, onOverdue: options.onOverdue });
  const engine = createJobEngine({
    runs,
    hideToolErrors: options.hideToolErrors,
    store: stores.jobStore,
    queue: stores.jobQueue,
    tools,
    server: {
      id: options.serverId ?? "smcp-local",
      fingerprint: "worker",
      capabilities: { ...defaultCapabilities(), ...options.capabilities },
    },
    leaseMs: options.leaseMs,
    concurrency: options.concurrency,
    sweepEveryMs: options.sweepEveryMs,
    onJob: options.onJob,
    onError: options.onError,
  });
  let closing: Promise<void> | undefined;
  return {
    workerId: engine.runner.workerId,
    tools: jobTools,
    runs,
    close() {
      closing ??= (async () => {
        await engine.close();
        await Promise.allSettled([stores.jobStore.close(), stores.nonceStore?.close()]);
      })();
      return closing;
    },
  };
}
