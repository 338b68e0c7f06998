import { Cluster, Redis } from "ioredis";
import { SmcpUsageError } from "../../protocol/errors.js";
import { redactUrl } from "../../util/redact.js";

/** What dispatches a Redis store's jobs: BullMQ, or workers claiming from the job store. */
export type RedisDispatch = "bullmq" | "store";

// `?queue=`: absent is BullMQ (the default); anything but the two names is a mistake, said at startup.
function dispatchOf(value: string | null, bad: () => Error): RedisDispatch {
  if (value === null || value === "bullmq") return "bullmq";
  if (value === "store") return "store";
  throw bad();
}

/** A Redis store URL, split into what ioredis takes and smcp's key prefixes. */
export interface RedisTarget {
  /** `redis://[user:pass@]host:port[/db]` without smcp's own parameters (a cluster: `redis+cluster://` and its seeds). */
  url: string;
  /**
   * Prefix of the job store's and BullMQ's keys (`?prefix=`; default `smcp:`).
   * On a cluster it is hash-tagged (`{smcp}:`): every job, queue and
   * index key is in one slot, so each Lua script and BullMQ's own touch one slot.
   */
  prefix: string;
  /**
   * Prefix of the per-request keys: replay-cache pairs and rate counters.
   * Never hash-tagged, so on a cluster these keys (the load that grows with
   * requests) spread over every shard by their own tags.
   */
  spreadPrefix: string;
  /** Replicas that must acknowledge a new job (`?wait=N&wait_ms=MS`; on a cluster 1 and 250 ms by default). */
  replicaAcks?: { replicas: number; timeoutMs: number };
  /**
   * What dispatches jobs (`?queue=`): `bullmq` (default), BullMQ's queues,
   * or `store`, workers claiming from the job store itself (see `RedisClaimQueue`).
   */
  queue: RedisDispatch;
  /** A cluster's credentials (`redis+cluster://USER:PASSWORD@…`), for every node. */
  username?: string;
  password?: string;
  /** A Redis Cluster's seed nodes (`redis+cluster://HOST:PORT,HOST:PORT`); absent for one Redis. */
  cluster?: { host: string; port: number }[];
}

/**
 * Parses `redis+cluster://HOST:PORT[,HOST:PORT…][/?prefix=NAME][&wait=N][&wait_ms=MS][&queue=bullmq|store]`:
 * a cluster named by its seed nodes; `wait` replicas (default 1, 0 for none)
 * must acknowledge a new job within `wait_ms` (default 250).
 */
function parseClusterUrl(text: string): RedisTarget {
  const match = /^redis\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?(?:\?(.*))?$/.exec(text);
  const bad = () =>
    new SmcpUsageError(
      "the Redis Cluster URL is malformed; use redis+cluster://HOST:PORT[,HOST:PORT…][/?prefix=NAME][&queue=bullmq|store]",
    );
  if (!match) throw bad();
  const nodes = (match[2] as string).split(",").map((seed) => {
    const at = /^([^:]+):(\d{1,5})$/.exec(seed.trim());
    if (!at) throw bad();
    return { host: at[1] as string, port: Number(at[2]) };
  });
  const params = new URLSearchParams(match[3] ?? "");
  const name = params.get("prefix") ?? "smcp";
  const count = (key: string, fallback: number, max: number) => {
    const text = params.get(key);
    if (text === null) return fallback;
    if (!/^\d{1,6}$/.test(text) || Number(text) > max) throw bad();
    return Number(text);
  };
  const replicaAcks = { replicas: count("wait", 1, 16), timeoutMs: count("wait_ms", 250, 60_000) };
  // The tag is the name without separators or braces: `{name}` decides the slot of every job key.
  const tag = name.replace(/[{}]/g, "").replace(/:+$/, "");
  if (tag === "") throw bad();
  const queue = dispatchOf(params.get("queue"), bad);
  const target: RedisTarget = { url: text, prefix: `{${tag}}:`, spreadPrefix: `${tag}:`, cluster: nodes, replicaAcks, queue };
  if (match[1] !== undefined) {
    const colon = match[1].indexOf(":");
    const user = decodeURIComponent(colon < 0 ? match[1] : match[1].slice(0, colon));
    if (user !== "") target.username = user;
    if (colon >= 0) target.password = decodeURIComponent(match[1].slice(colon + 1));
  }
  return target;
}

/** Parses `redis://HOST:PORT[/DB][?prefix=P][&queue=bullmq|store]` (also `rediss://`), or `redis+cluster://…` (see {@link RedisTarget}). */
export function parseRedisUrl(text: string): RedisTarget {
  if (text.startsWith("redis+cluster://")) return parseClusterUrl(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SmcpUsageError("the Redis store URL is malformed; use redis://HOST:PORT[/DB][?prefix=P]");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new SmcpUsageError("the Redis store URL must start with redis:// or rediss://");
  }
  const prefix = url.searchParams.get("prefix") ?? "smcp:";
  const queue = dispatchOf(
    url.searchParams.get("queue"),
    () => new SmcpUsageError("the Redis store URL's queue must be bullmq or store"),
  );
  url.searchParams.delete("prefix");
  url.searchParams.delete("queue");
  return { url: url.toString(), prefix, spreadPrefix: prefix, queue };
}

/**
 * Opens a Redis connection that fails fast: with the server down, commands
 * reject at once (no offline queue), so requests fail closed with
 * `unavailable` instead of hanging; ioredis keeps reconnecting in the
 * background and service resumes by itself. `blocking` connections (BullMQ
 * workers) retry commands instead, as BullMQ requires.
 */
export async function connectRedis(
  target: RedisTarget,
  options: { blocking?: boolean; onError?: (error: Error) => void } = {},
): Promise<Redis> {
  const retry = (times: number) => Math.min(times * 100, 1000);
  const perRequest = options.blocking ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 0 };
  // No ioredis auto-pipelining: rate-limiter-flexible defines its Lua command on this connection lazily, and a
  // command defined while an auto-pipeline is queued throws inside ioredis and shifts every later reply of that
  // batch by one (a replayed nonce read "OK"); on a Cluster a batch with a write is not redirected on MOVED
  // (redis/ioredis#2075). Measured and reverted in round 3, session 7.
  const redis = target.cluster
    ? // A Cluster has the same command API as one Redis (commands, scripts, pipelines on one slot, pub/sub),
      // which is what the stores, BullMQ and rate-limiter-flexible use; the stores see it as a Redis.
      (new Cluster(target.cluster, {
        lazyConnect: true,
        clusterRetryStrategy: retry,
        enableOfflineQueue: options.blocking === true,
        // After a failover the slots move: ask again soon, and follow MOVED/ASK a few times, not forever.
        slotsRefreshTimeout: 2000,
        maxRedirections: 4,
        // A dead master's slots move to its promoted replica, but a command failing on the dead node
        // refreshes nothing by itself: the slot map is read again every second.
        slotsRefreshInterval: 1000,
        redisOptions: {
          connectTimeout: 2000,
          ...(target.username === undefined ? {} : { username: target.username }),
          ...(target.password === undefined ? {} : { password: target.password }),
          ...perRequest,
        },
      }) as unknown as Redis)
    : new Redis(target.url, {
        lazyConnect: true,
        connectTimeout: 2000,
        retryStrategy: retry,
        ...(options.blocking ? { maxRetriesPerRequest: null } : { enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
      });
  // Errors are reported once per outage, not once per reconnect attempt.
  let reported = false;
  redis.on("error", (error: Error) => {
    if (!reported) options.onError?.(error);
    reported = true;
  });
  redis.on("ready", () => {
    reported = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new SmcpUsageError(`cannot reach Redis at ${redactUrl(target.url)}: ${(error as Error).message}`);
  }
  return redis;
}
