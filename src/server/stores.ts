import { BullJobQueue } from "../jobs/bullmq.js";
import { MemoryJobStore } from "../jobs/memory.js";
import { PollingJobQueue } from "../jobs/polling.js";
import { RedisJobStore } from "../jobs/redis.js";
import { SqliteJobStore } from "../jobs/sqlite.js";
import type { JobStore } from "../jobs/store.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { connectRedis, parseRedisUrl } from "../redis.js";
import { MemoryNonceStore } from "../replay/memory.js";
import { RedisNonceStore } from "../replay/redis.js";
import { SqliteNonceStore } from "../replay/sqlite.js";
import type { NonceStore } from "../replay/store.js";
import { redactUrl } from "../util/redact.js";
import type { ServerOptions } from "./core.js";

/** The stores behind a server, opened from a store URL. */
export interface OpenedStores {
  jobStore: JobStore;
  nonceStore: NonceStore;
  /** How jobs are executed, when not in this process alone. */
  jobQueue?: ServerOptions["jobQueue"];
}

/** Options for {@link openStores}. */
export interface OpenStoresOptions {
  /** Retention of finished jobs, ms. */
  retentionMs?: number;
  /** Redis: whether this process also executes jobs (a BullMQ worker). Default true. */
  worker?: boolean;
  /** Sees connection errors (once per outage). */
  onError?: (error: unknown) => void;
}

/**
 * Opens the stores named by a URL: `memory` (one process, lost on restart),
 * `sqlite:PATH` (durable, shared by the processes of one host),
 * `redis://HOST:PORT[/DB][?prefix=P]` (shared by replicas; jobs through BullMQ).
 */
export async function openStores(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  const retention = options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs };
  if (url === "memory") {
    return { jobStore: new MemoryJobStore(retention), nonceStore: new MemoryNonceStore() };
  }
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") throw new SmcpUsageError("sqlite: needs a file, e.g. --store sqlite:.smcp/smcp.db");
    let jobStore: SqliteJobStore;
    try {
      jobStore = new SqliteJobStore(path, retention);
    } catch (error) {
      throw new SmcpUsageError(`cannot open ${path}: ${(error as Error).message}; check the path and its permissions`);
    }
    return {
      jobStore,
      nonceStore: new SqliteNonceStore(path),
      jobQueue: (deps) => new PollingJobQueue(deps),
    };
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return openRedisStores(url, options);
  throw new SmcpUsageError(`store '${redactUrl(url)}' is not supported; use memory, sqlite:PATH or redis://HOST:PORT[/DB]`);
}

async function openRedisStores(url: string, options: OpenStoresOptions): Promise<OpenedStores> {
  const target = parseRedisUrl(url);
  const onError = options.onError ?? (() => {});
  const worker = options.worker ?? true;
  const connect = (blocking = false) => connectRedis(target, { blocking, onError });
  const [jobs, nonces, queue, publisher] = await Promise.all([connect(), connect(), connect(), connect()]);
  const [workerConnection, subscriber] = worker ? await Promise.all([connect(true), connect(true)]) : [undefined, undefined];
  const prefix = target.prefix;
  return {
    jobStore: new RedisJobStore(jobs, {
      prefix,
      closeConnection: true,
      ...(options.retentionMs ? { retentionMs: options.retentionMs } : {}),
    }),
    nonceStore: new RedisNonceStore(nonces, { prefix, closeConnection: true }),
    jobQueue: (deps) =>
      new BullJobQueue({
        connections: { queue, publisher, ...(workerConnection && subscriber ? { worker: workerConnection, subscriber } : {}) },
        prefix,
        store: deps.store,
        tools: deps.tools,
        runner: worker ? deps.runner : undefined,
        concurrency: deps.concurrency,
        onError: deps.onError,
      }),
  };
}
