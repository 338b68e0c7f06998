import { randomUUID } from "node:crypto";
import { after } from "node:test";
import { Redis } from "ioredis";
import { openStores, RedisJobStore, RedisNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

// Every store in this file lives under its own prefix below this one.
const RUN = `smcp-test-${randomUUID().slice(0, 8)}:`;
const connections: Redis[] = [];
const connect = () => {
  const redis = new Redis(REDIS_URL);
  connections.push(redis);
  return redis;
};
after(async () => {
  await deleteKeys(RUN);
  for (const c of connections) c.disconnect();
});

jobStoreConformance("redis", async ({ retentionMs }) => {
  let offset = 0;
  const store = new RedisJobStore(connect(), {
    prefix: `${RUN}${randomUUID().slice(0, 8)}:`,
    retentionMs,
    now: () => Date.now() + offset,
  });
  return { store, advance: (ms) => (offset += ms) };
});

nonceStoreConformance("redis", async () => {
  const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
  return { store: new RedisNonceStore(connect(), { prefix }), reopen: () => new RedisNonceStore(connect(), { prefix }) };
});

serverJobConformance("redis + BullMQ", async () => {
  const stores = await openStores(`${REDIS_URL}?prefix=${RUN}${randomUUID().slice(0, 8)}:`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
});
