import { randomUUID } from "node:crypto";
import { jobAccessFor } from "../jobs/access.js";
import type { JobQueue } from "../jobs/queue.js";
import { JobRunner, type ToolEnvironment } from "../jobs/runner.js";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { builtinTools } from "../tools/builtin.js";
import type { Tool } from "../tools/define.js";
import { ToolRegistry } from "../tools/registry.js";
import type { OpenedStores } from "./stores.js";

/** Options for {@link createWorker}. */
export interface WorkerOptions {
  /** Opened with `openStores(url)`; must be a store whose jobs can run elsewhere (Redis, SQLite). */
  stores: OpenedStores;
  /** The job tools to run: the same definitions the API servers offer. Default: the built-ins. */
  tools?: Iterable<Tool>;
  /** The server id job handlers see in `ctx.server`. Default `smcp-worker`. */
  serverId?: string;
  /** Jobs run at once. Default 32. */
  concurrency?: number;
  /** Lease of a running job, ms (see {@link JobRunner}). Default 30,000. */
  leaseMs?: number;
  onError?: (error: unknown) => void;
}

/** A job worker without an API: it executes jobs that API replicas enqueued. */
export interface SmcpWorker {
  readonly workerId: string;
  /** Stops taking jobs; running ones go back to `queued` for another worker. */
  close(): Promise<void>;
}

/** Starts a worker process's job execution (what `smcp worker` runs). */
export function createWorker(options: WorkerOptions): SmcpWorker {
  const { stores } = options;
  if (!stores.jobQueue)
    throw new SmcpUsageError("a worker needs a shared store (redis:// or sqlite:); memory jobs live in the API process");
  const tools = new ToolRegistry(options.tools ?? builtinTools);
  const workerId = `smcp-worker-${randomUUID().slice(0, 8)}`;
  const capabilities: JsonObject = { async: true, stateless: true, protocol: PROTOCOL_VERSION };
  let queue: JobQueue | undefined;
  const env: ToolEnvironment = {
    server: { id: options.serverId ?? "smcp-worker", fingerprint: "worker", capabilities },
    tools: () => tools.describe(),
    jobsFor: (clientId) => jobAccessFor(stores.jobStore, queue as JobQueue, clientId),
  };
  const onError = options.onError ?? (() => {});
  const runner = new JobRunner({ store: stores.jobStore, tools, env, workerId, onError, leaseMs: options.leaseMs });
  queue = stores.jobQueue({ runner, store: stores.jobStore, tools, concurrency: options.concurrency ?? 32, onError });
  let closing: Promise<void> | undefined;
  return {
    workerId,
    close() {
      closing ??= (async () => {
        await queue?.close();
        await Promise.allSettled([stores.jobStore.close(), stores.nonceStore.close()]);
      })();
      return closing;
    },
  };
}
