import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import type { RateLimiterRedis } from "rate-limiter-flexible";
import type { OpenedStores, OpenStoresOptions } from "../../jobs/stores.js";
import { SmcpUsageError } from "../../protocol/errors.js";
import { RedisClaimQueue } from "./claim-queue.js";
import { connectRedis, parseRedisUrl, type RedisDispatch } from "./connection.js";
import { RedisJobStore, redisQueueChannels } from "./jobs.js";
import { RedisNonceStore } from "./nonces.js";
import { BullJobQueue } from "./queue.js";

const requireLib = createRequire(import.meta.url);

/**
 * Opens the Redis stores: jobs and replay cache shared by every replica, jobs
 * dispatched through BullMQ, or (`?queue=store`) claimed from the job store.
 */
export async function openRedisStores(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  const target = parseRedisUrl(url);
  const onError = options.onError ?? (() => {});
  const connect = (blocking = false) => connectRedis(target, { blocking, onError });
  const claimed = target.queue === "store";
  // BullMQ's producer connection only when BullMQ dispatches.
  const [jobs, nonces, queue] = await Promise.all([connect(), connect(), claimed ? undefined : connect()]);
  const prefix = target.prefix;
  const fail = (error: unknown) => {
    for (const connection of [jobs, nonces, queue]) connection?.disconnect();
    throw error;
  };
  const handOver = await agreeOnDispatch(jobs, prefix, target.queue).catch(fail);
  const jobStore = new RedisJobStore(jobs, {
    prefix,
    closeConnection: true,
    replicaAcks: target.replicaAcks,
    // Claiming workers wake on the tool of each job the store queues, and claim from its tool's queued set;
    // BullMQ, which never claims, needs neither.
    ...(claimed ? { queuedChannel: redisQueueChannels(prefix).queued } : { toolQueues: false }),
    ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
  });
  // The store as the queue, newly recorded (a switch from BullMQ, or an upgrade from a build without the record):
  // jobs already queued are in no tool's set yet, and a claim reads only those. Until one process has put them
  // there, the record says so, and every process of the store as the queue tries (it is idempotent).
  if (handOver) {
    await jobStore.indexQueuedByTool().catch(fail);
    await jobs.set(`${prefix}dispatch`, "store", "XX").catch(fail);
  }
  return {
    jobStore,
    // Per-request keys under the untagged prefix: on a cluster they spread over every shard.
    nonceStore: new RedisNonceStore(nonces, { prefix: target.spreadPrefix, closeConnection: true }),
    // Worker connections are opened only by a process that runs jobs.
    jobQueue: (deps) =>
      queue === undefined
        ? new RedisClaimQueue({ ...deps, connections: { open: connect }, prefix })
        : new BullJobQueue({ ...deps, connections: { queue, open: connect }, prefix }),
    // Rate counters in Redis, so a client's limit holds across every replica (fails closed when Redis is down).
    rateLimiter: (config) => {
      const Redis = requireLib("rate-limiter-flexible/lib/RateLimiterRedis.js") as typeof RateLimiterRedis;
      return new Redis({
        ...config,
        keyPrefix: `${target.spreadPrefix}${config.keyPrefix}`,
        storeClient: nonces,
        rejectIfRedisNotReady: true,
      });
    },
  };
}

/** The dispatch record while the jobs queued before the store became the queue are not all in their tools' sets. */
const STORE_HANDOVER = "store, handing over";

/**
 * Every process of a deployment must hand jobs over the same way (`queue=`): an API replica on BullMQ and
 * workers claiming from the store would strand every job. The first process records its way under the
 * prefix; one that disagrees refuses to start. The store as the queue is first recorded as
 * {@link STORE_HANDOVER}; true when the record says so (this process then hands the queued jobs over).
 */
async function agreeOnDispatch(redis: Redis, prefix: string, queue: RedisDispatch): Promise<boolean> {
  const key = `${prefix}dispatch`;
  await redis.set(key, queue === "store" ? STORE_HANDOVER : queue, "NX");
  const recorded = await redis.get(key);
  const way = recorded === STORE_HANDOVER ? "store" : recorded;
  if (way !== null && way !== queue) {
    throw new SmcpUsageError(
      `the jobs under this prefix are dispatched with queue=${way}, not queue=${queue}; every process of a deployment must use the same (recorded in the key ${key}; to switch, see docs/stores.md)`,
    );
  }
  return recorded === STORE_HANDOVER;
}

/** Opens the stores a `redis://` or `redis+cluster://` URL names (every backend exports `open(url, options)`). */
export const open: (url: string, options?: OpenStoresOptions) => Promise<OpenedStores> = openRedisStores;
