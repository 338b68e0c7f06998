import type { JobQueueFactory } from "../jobs/queue.js";
import { SmcpUsageError } from "../protocol/errors.js";
import type { RateLimiterFactory } from "../server/limits.js";
import { redactUrl } from "../util/redact.js";
import type { JobStore } from "./jobs.js";
import { MemoryJobStore } from "./memory/jobs.js";
import { MemoryNonceStore } from "./memory/nonces.js";
import type { NonceStore } from "./nonces.js";

/** The stores behind a server or worker, opened from a store URL. */
export interface OpenedStores {
  jobStore: JobStore;
  nonceStore: NonceStore;
  /** How jobs are dispatched when not in this process alone (SQLite, Redis). */
  jobQueue?: JobQueueFactory;
  /** Where per-client rate counters live when they must be shared by replicas (Redis). Default: process memory. */
  rateLimiter?: RateLimiterFactory;
}

/** Options for {@link openStores}. */
export interface OpenStoresOptions {
  /** Retention of finished jobs, ms. Default 24 h. */
  retentionMs?: number;
  /** Sees connection errors (once per outage). */
  onError?: (error: unknown) => void;
}

/**
 * Opens the stores named by a URL: `memory` (one process, lost on restart),
 * `sqlite:PATH` (durable, shared by the processes of one host),
 * `redis://HOST:PORT[/DB][?prefix=P]` (shared by replicas; jobs through
 * BullMQ). SQLite and Redis code is loaded only when asked for.
 */
export async function openStores(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  const retention = options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs };
  if (url === "memory") return { jobStore: new MemoryJobStore(retention), nonceStore: new MemoryNonceStore() };
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") throw new SmcpUsageError("sqlite: needs a file, e.g. --store sqlite:.smcp/smcp.db");
    const { openSqliteStores } = await importStore(() => import("./sqlite/open.js"), "better-sqlite3");
    return openSqliteStores(path, options);
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) {
    const { openRedisStores } = await importStore(() => import("./redis/open.js"), "ioredis bullmq");
    return openRedisStores(url, options);
  }
  throw new SmcpUsageError(`store '${redactUrl(url)}' is not supported; use memory, sqlite:PATH or redis://HOST:PORT[/DB]`);
}

/** Loads a store backend; its packages are optional peer dependencies, so a missing one gets the install line. */
async function importStore<T>(load: () => Promise<T>, packages: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND") {
      throw new SmcpUsageError(`this store needs ${packages}: run \`npm install ${packages}\``);
    }
    throw error;
  }
}
