import { randomUUID } from "node:crypto";
import { after } from "node:test";
import { Redis } from "ioredis";
import { RedisJobStore, RedisNonceStore } from "../src/redis.js";
import { openStores } from "../src/stores.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { type HeldRecords, tenancyConformance } from "./conformance/tenancy.js";
import { until } from "./helpers.js";
import { type Child, freePort, start } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

// Every store in this file lives under its own prefix below this one.
const RUN = `smcp-test-${randomUUID().slice(0, 8)}:`;
const connections: Redis[] = [];
const connect = () => {
  const redis = new Redis(REDIS_URL);
  connections.push(redis);
  return redis;
};
const children: Child[] = [];
after(async () => {
  await deleteKeys(RUN);
  for (const c of connections) c.disconnect();
  for (const child of children) await child.stop("SIGKILL");
});

/** A Redis server of this test file's own (for settings the shared one must keep), and a connection to it. */
async function privateRedis(): Promise<Redis> {
  const port = await freePort();
  children.push(await start("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]));
  const redis = new Redis(`redis://127.0.0.1:${port}/0`, { lazyConnect: true, retryStrategy: () => 50 });
  connections.push(redis);
  await until(async () => (await redis.ping().catch(() => "")) === "PONG", 10_000, "redis-server to listen");
  return redis;
}

jobStoreConformance("redis", async ({ retentionMs }) => {
  let offset = 0;
  const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
  const store = new RedisJobStore(connect(), { prefix, retentionMs, now: () => Date.now() + offset });
  return { store, advance: (ms) => (offset += ms), reopen: () => new RedisJobStore(connect(), { prefix, retentionMs }) };
});

nonceStoreConformance(
  "redis",
  async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    return { store: new RedisNonceStore(connect(), { prefix }), reopen: () => new RedisNonceStore(connect(), { prefix }) };
  },
  {
    durable: true,
    injectedClock: false,
    // A Redis of our own with a little room under maxmemory (noeviction: Redis's default), so filling it disturbs nothing.
    capped: async () => {
      const redis = await privateRedis();
      const used = Number(/^used_memory:(\d+)/m.exec(await redis.info("memory"))?.[1]);
      await redis.config("SET", "maxmemory", String(used + 400_000));
      return { store: new RedisNonceStore(redis), lifetimeMs: 4000 };
    },
  },
);

/** Every key under a prefix, with the fields of its hashes and the members of its sorted sets (job hashes: the key alone). */
async function heldUnder(redis: Redis, prefix: string): Promise<HeldRecords> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== "0");
  const entries: string[] = [];
  let jobs = 0;
  for (const key of keys) {
    const name = key.slice(prefix.length);
    entries.push(name);
    if (name.startsWith("job:")) {
      jobs++;
      continue;
    }
    const type = await redis.type(key);
    if (type === "hash") for (const field of await redis.hkeys(key)) entries.push(`${name}#${field}`);
    if (type === "zset") for (const member of await redis.zrange(key, "0", "-1")) entries.push(`${name}#${member}`);
  }
  return { jobs, entries };
}

tenancyConformance("redis", async ({ retentionMs }) => {
  let offset = 0;
  const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
  const now = () => Date.now() + offset;
  const store = new RedisJobStore(connect(), { prefix, retentionMs, now });
  const reader = connect();
  return {
    store,
    advance: (ms) => (offset += ms),
    twin: async () => new RedisJobStore(connect(), { prefix, retentionMs, now }),
    held: () => heldUnder(reader, prefix),
  };
});

serverJobConformance("redis + BullMQ", async () => {
  const stores = await openStores(`${REDIS_URL}?prefix=${RUN}${randomUUID().slice(0, 8)}:`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
});

longPollConformance("redis + BullMQ", async () => {
  const stores = await openStores(`${REDIS_URL}?prefix=${RUN}${randomUUID().slice(0, 8)}:`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
});
