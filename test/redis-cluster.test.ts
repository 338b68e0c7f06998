/**
 * smcp on a real Redis Cluster (three masters, three replicas on loopback):
 * the same conformance suites as on one Redis, through `redis+cluster://`,
 * and a failover: a killed master fails requests closed (`unavailable`,
 * nothing executed) until its replica is promoted, then service resumes.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { z } from "zod";
import { connectRedis, parseRedisUrl } from "../src/backends/redis/connection.js";
import { defineTool } from "../src/index.js";
import { RedisJobStore, RedisNonceStore } from "../src/redis.js";
import { openStores } from "../src/stores.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { pair } from "./helpers.js";
import { type LocalCluster, startCluster } from "./redis-cluster-helpers.js";

let cluster: LocalCluster;
const connections: Redis[] = [];
before(async () => {
  cluster = await startCluster();
});
after(async () => {
  for (const c of connections) c.disconnect();
  await cluster?.stop();
  // The servers' cluster clients (opened by openStores inside the suites) keep retrying a cluster that is
  // gone; once everything has been reported, they must not hold the file open (it hung the suite once).
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
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

// The store as the queue on a cluster: the claim script's candidate keys share the prefix's slot, and the
// queued-tool and cancel publishes reach a subscriber on any node.
serverJobConformance("redis cluster, the store as the queue", async () => {
  const stores = await openStores(`${cluster.url}/?prefix=${name()}&queue=store`);
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

describe("a slot being moved (resharding; review, round 3 session 8)", () => {
  it("a turn's reservations for a client whose slot is moving still answer (one key per call), and replays stay refused", async () => {
    const { redis, spreadPrefix } = await connect(name());
    const store = new RedisNonceStore(redis, { prefix: spreadPrefix });
    const expiresAt = Date.now() + 60_000;
    const reserve = (nonces: string[]) => Promise.all(nonces.map((n) => store.reserve("alice", n, expiresAt)));
    assert.deepEqual(await reserve(["a", "b", "c"]), [true, true, true]);
    const key = store.key("alice", "x");
    const fromPort = await cluster.masterOf(key);
    const node = (port: number) => {
      const r = new Redis(port, "127.0.0.1", { lazyConnect: true });
      connections.push(r);
      return r;
    };
    const from = node(fromPort);
    const nodes = String(await from.call("CLUSTER", "NODES"))
      .trim()
      .split("\n");
    const toLine = nodes.find((line) => /\bmaster\b/.test(line) && !/\bfail/.test(line) && !line.includes(`:${fromPort}@`));
    assert.ok(toLine, String(nodes));
    const [toId, address] = toLine.split(" ") as [string, string];
    const to = node(Number(/:(\d+)@/.exec(address)?.[1]));
    const fromId = String(await from.call("CLUSTER", "MYID"));
    const slot = String(await from.call("CLUSTER", "KEYSLOT", key));
    await to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
    await from.call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
    try {
      // New pairs only (none on the old node: ASK for a call of several keys), then new beside held (TRYAGAIN).
      assert.deepEqual(await reserve(["d", "e"]), [true, true]);
      assert.deepEqual(await reserve(["f", "c"]), [true, false]);
      // d now lives on the importing node, c on the old one: each is still a replay.
      assert.deepEqual(await reserve(["d", "g", "c"]), [false, true, false]);
    } finally {
      // The keys written to the importing node are dropped, and the slot is left where it was.
      const moved = (await to.call("CLUSTER", "GETKEYSINSLOT", slot, "1000")) as string[];
      for (const k of moved) await to.pipeline().call("ASKING").del(k).exec();
      await from.call("CLUSTER", "SETSLOT", slot, "STABLE");
      await to.call("CLUSTER", "SETSLOT", slot, "STABLE");
    }
  });
});

describe("failover: a killed master with a replica", () => {
  it("requests fail closed (unavailable, nothing executed) until the replica is promoted, then service resumes", {
    timeout: 90_000,
  }, async (t) => {
    const prefix = name();
    const stores = await openStores(`${cluster.url}/?prefix=${prefix}`);
    const ran = new Set<number>();
    const mark = defineTool({
      kind: "job",
      name: "mark",
      description: "records that it ran",
      input: z.strictObject({ i: z.number().int() }),
      output: z.strictObject({ i: z.number() }),
      handler: ({ i }) => {
        ran.add(i);
        return { i };
      },
    });
    const { server, client } = pair({ ...stores, tools: [mark] });
    try {
      assert.deepEqual(await client.callAndWait("mark", { i: -1 }), { i: -1 });
      const master = await cluster.masterOf(`{${prefix}}:queued`);
      const killedAt = Date.now();
      await cluster.kill(master);
      const accepted: { i: number; jobId: string }[] = [];
      const refused: number[] = [];
      let resumedAt: number | undefined;
      for (let i = 0; resumedAt === undefined; i++) {
        assert.ok(Date.now() - killedAt < 60_000, "service resumed within 60 s");
        const answer = await client.request("mark", { i }, { rateLimitRetries: 0 });
        if (answer.status === "accepted") {
          accepted.push({ i, jobId: String(answer.result?.job_id) });
          resumedAt = Date.now();
        } else {
          assert.equal(answer.result?.code, "unavailable", JSON.stringify(answer));
          refused.push(i);
          // Polled, not timed: the next attempt as soon as this one is answered, a little apart.
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      }
      t.diagnostic(`unavailable for ${resumedAt - killedAt} ms after the kill (${refused.length} refused requests)`);
      assert.ok(refused.length > 0, "the outage was seen");
      // After the promotion: new jobs run, and the jobs refused during the outage never do.
      for (const { jobId } of accepted) assert.equal((await client.waitForJob(jobId)).status, "done");
      assert.deepEqual(await client.callAndWait("mark", { i: 100_000 }), { i: 100_000 });
      for (const i of refused) assert.equal(ran.has(i), false, `refused request ${i} ran`);
    } finally {
      await server.close();
    }
  });
});

describe("redis+cluster:// URLs", () => {
  it("seeds, prefix as a hash tag, wait, credentials; malformed ones refused with the form to use", () => {
    const t = parseRedisUrl("redis+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2:7001/?prefix=crunch&wait=2&wait_ms=500");
    assert.deepEqual(t.cluster, [
      { host: "10.0.0.1", port: 7000 },
      { host: "10.0.0.2", port: 7001 },
    ]);
    assert.equal(t.prefix, "{crunch}:");
    assert.equal(t.spreadPrefix, "crunch:");
    assert.deepEqual(t.replicaAcks, { replicas: 2, timeoutMs: 500 });
    assert.equal(t.username, "app");
    assert.equal(t.password, "s:cret");
    assert.equal(t.queue, "bullmq");
    assert.equal(parseRedisUrl("redis+cluster://h:1/?queue=store").queue, "store");
    const plain = parseRedisUrl("redis+cluster://127.0.0.1:7101");
    assert.equal(plain.prefix, "{smcp}:");
    assert.deepEqual(plain.replicaAcks, { replicas: 1, timeoutMs: 250 });
    for (const bad of [
      "redis+cluster://",
      "redis+cluster://host",
      "redis+cluster://h:1,h",
      "redis+cluster://h:1/?prefix={}",
      "redis+cluster://h:1/?wait=-1",
      "redis+cluster://h:1/?wait_ms=abc",
      "redis+cluster://h:1/?queue=kafka",
      "redis+cluster://h:1/?queue=",
    ]) {
      assert.throws(() => parseRedisUrl(bad), /redis\+cluster:\/\/HOST:PORT/, bad);
    }
  });
});
