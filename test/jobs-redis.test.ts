import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { Redis } from "ioredis";
import { RedisClaimQueue } from "../src/backends/redis/claim-queue.js";
import { parseRedisUrl } from "../src/backends/redis/connection.js";
import type { JobQueueFactory } from "../src/index.js";
import { RedisJobStore, RedisNonceStore, redisQueueChannels } from "../src/redis.js";
import { openStores } from "../src/stores.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { type HeldRecords, tenancyConformance } from "./conformance/tenancy.js";
import { heldJobTool, pair, until } from "./helpers.js";
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

// The store as the queue (?queue=store): workers claim from the job store (lua/claim.lua), woken by its publishes.
const storeQueue = async () => {
  const stores = await openStores(`${REDIS_URL}?prefix=${RUN}${randomUUID().slice(0, 8)}:&queue=store`);
  return { jobStore: stores.jobStore, nonceStore: stores.nonceStore, ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}) };
};
serverJobConformance("redis, the store as the queue", storeQueue);
longPollConformance("redis, the store as the queue", storeQueue);

describe("redis: the store as the queue", () => {
  const newJob = (tool: string, clientId = "c1") => ({ id: randomUUID(), clientId, tool, args: {} });

  it("?queue= picks the dispatch: bullmq by default, store, anything else refused with the form to use", () => {
    assert.equal(parseRedisUrl(REDIS_URL).queue, "bullmq");
    assert.equal(parseRedisUrl(`${REDIS_URL}?queue=bullmq`).queue, "bullmq");
    const store = parseRedisUrl(`${REDIS_URL}?prefix=p:&queue=store`);
    assert.equal(store.queue, "store");
    assert.equal(store.prefix, "p:");
    assert.ok(!store.url.includes("queue"), "smcp's own parameter is not passed to ioredis");
    for (const bad of ["kafka", "", "STORE"]) {
      assert.throws(() => parseRedisUrl(`${REDIS_URL}?queue=${bad}`), /queue must be bullmq or store/, bad);
    }
  });

  it("claims racing from two handles take every job once, in fair-turn order", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const [a, b] = [new RedisJobStore(connect(), { prefix }), new RedisJobStore(connect(), { prefix })];
    // Two clients: c1 queues 30, c2 one; 40 claims from two handles race for the 31 jobs.
    const flood = Array.from({ length: 30 }, () => newJob("t"));
    for (const j of flood) await a.create(j);
    const lone = newJob("t", "c2");
    await a.create(lone);
    const claims = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).claim(`w${i}`, Date.now() + 60_000)));
    const taken = claims.filter((j) => j !== undefined).map((j) => j.id);
    assert.equal(taken.length, 31, "every job claimed, none twice; nine claims found nothing");
    assert.equal(new Set(taken).size, 31);
    const running = (await a.list({ state: "running" })).map((j) => j.id);
    assert.equal(running.length, 31);
    assert.equal(await a.claim("late", Date.now() + 60_000), undefined);
    // Sequential claims come in queue order: turn 1 (c1's first and c2's job), then c1's turns 2, 3, ...
    const prefix2 = `${RUN}${randomUUID().slice(0, 8)}:`;
    const c = new RedisJobStore(connect(), { prefix: prefix2 });
    const order = [newJob("t"), newJob("t"), newJob("t"), newJob("t", "c2")];
    for (const j of order) await c.create(j);
    const seq: string[] = [];
    for (let i = 0; i < 4; i++) seq.push(((await c.claim("w", Date.now() + 60_000)) as { id: string }).id);
    assert.deepEqual(seq, [order[0]?.id, order[3]?.id, order[1]?.id, order[2]?.id]);
  });

  it("the claims of one turn share one read of the queue's head and one claim script", async () => {
    const redis = await privateRedis();
    const store = new RedisJobStore(redis, { prefix: "p:" });
    const queued = Array.from({ length: 12 }, (_, i) => newJob("t", `c${i}`));
    for (const j of queued) await store.create(j);
    await redis.config("RESETSTAT");
    const claims = await Promise.all(Array.from({ length: 10 }, () => store.claim("w", Date.now() + 60_000)));
    assert.deepEqual(
      claims.map((j) => j?.id),
      queued.slice(0, 10).map((j) => j.id),
      "the first ten, in queue order, one to each claim",
    );
    const stats = await redis.info("commandstats");
    const calls = (command: string) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(stats)?.[1] ?? 0);
    assert.equal(calls("zrange"), 1);
    assert.equal(calls("evalsha") + calls("eval"), 1);
    // A turn asking more than is queued: the rest find nothing, still in one read and one script.
    await redis.config("RESETSTAT");
    const more = await Promise.all(Array.from({ length: 5 }, () => store.claim("w", Date.now() + 60_000)));
    assert.deepEqual(
      more.map((j) => j?.id),
      [queued[10]?.id, queued[11]?.id, undefined, undefined, undefined],
    );
    const again = await redis.info("commandstats");
    assert.match(again, /^cmdstat_zrange:calls=1,/m);
  });

  it("a worker of one tool finds its job behind any number of other tools' jobs (review, round 3 session 10)", async () => {
    // The first build read only the first 100 or so of the global queue: a worker starved behind more.
    const store = new RedisJobStore(connect(), { prefix: `${RUN}${randomUUID().slice(0, 8)}:` });
    for (let i = 0; i < 150; i++) await store.create(newJob("other", `c${i}`));
    // One client's flood too: its later turns put its own job of this tool far back.
    for (let i = 0; i < 130; i++) await store.create(newJob("other", "flood"));
    const mine = newJob("mine", "flood");
    await store.create(mine);
    const claimed = await store.claim("w", Date.now() + 60_000, ["mine"]);
    assert.equal(claimed?.id, mine.id);
    assert.equal(claimed?.state, "running");
    assert.equal(await store.claim("w", Date.now() + 60_000, ["mine"]), undefined);
    assert.equal((await store.list({ state: "queued" })).length, 280, "no other tool's job was touched");
  });

  it("per-tool queued sets: a requeued job is claimed by its tool; a job cancelled while queued leaves no entry behind", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const redis = connect();
    const store = new RedisJobStore(redis, { prefix, retentionMs: 1 });
    const [a, b, c] = [newJob("t"), newJob("t"), newJob("u")];
    for (const j of [a, b, c]) await store.create(j);
    assert.equal(await redis.zcard(`${prefix}queued:t`), 2);
    // Requeued (its worker died): back in its tool's set, and claimed from it.
    assert.equal((await store.claim("w1", Date.now() + 60_000, ["t"]))?.id, a.id);
    assert.deepEqual(await redis.zrange(`${prefix}queued:t`, "0", "-1"), [b.id], "a claimed job leaves its tool's set");
    assert.equal(await store.requeue(a.id, 5), "queued");
    assert.deepEqual(await redis.zrange(`${prefix}queued:t`, "0", "-1"), [a.id, b.id]);
    assert.equal((await store.claim("w2", Date.now() + 60_000, ["t"]))?.id, a.id);
    // Cancelled while queued: the claim that meets its entry drops it (and finds nothing else).
    await store.cancel(b.id);
    assert.equal(await store.claim("w3", Date.now() + 60_000, ["t"]), undefined);
    assert.equal(await redis.zcard(`${prefix}queued:t`), 0);
    // Cancelled while queued, and no worker of its tool ever claims: the sweep drops the entry with the job.
    await store.cancel(c.id);
    assert.equal(await redis.zcard(`${prefix}queued:u`), 1);
    await until(async () => (await store.sweep()) > 0 && (await redis.zcard(`${prefix}queued:u`)) === 0, 5000, "the sweep");
    assert.equal(await redis.exists(`${prefix}queued:u`), 0);
  });

  it("a turn's claims pass over stale entries ahead (jobs cancelled while queued) to the job behind them", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const redis = connect();
    const store = new RedisJobStore(redis, { prefix });
    const stale = Array.from({ length: 60 }, (_, i) => newJob("t", `c${i}`));
    for (const j of stale) await store.create(j);
    const live = newJob("t", "cx");
    await store.create(live);
    for (const j of stale) await store.cancel(j.id);
    // One claim: its first pass reads 17 and drops them, the next reads the rest and finds the live job.
    assert.equal((await store.claim("w", Date.now() + 60_000, ["t"]))?.id, live.id);
    assert.equal(await redis.zcard(`${prefix}queued:t`), 0);
  });

  it("a claim for several tools takes their jobs in queue order, merged across the tools' sets", async () => {
    const store = new RedisJobStore(connect(), { prefix: `${RUN}${randomUUID().slice(0, 8)}:` });
    const jobs = ["t", "u", "v", "u", "t", "v", "t"].map((tool, i) => newJob(tool, `c${i}`));
    for (const j of jobs) await store.create(j);
    const taken: string[] = [];
    for (let i = 0; i < 5; i++) taken.push(((await store.claim("w", Date.now() + 60_000, ["u", "t"])) as { id: string }).id);
    assert.deepEqual(
      taken,
      jobs.filter((j) => j.tool !== "v").map((j) => j.id),
    );
    assert.equal(await store.claim("w", Date.now() + 60_000, ["u", "t"]), undefined);
  });

  it("without per-tool sets, a claim for some tools still looks past a head of other tools' jobs", async () => {
    const store = new RedisJobStore(connect(), { prefix: `${RUN}${randomUUID().slice(0, 8)}:`, toolQueues: false });
    for (let i = 0; i < 20; i++) await store.create(newJob("other", `c${i}`));
    const mine = newJob("mine", "cx");
    await store.create(mine);
    assert.equal((await store.claim("w", Date.now() + 60_000, ["mine"]))?.id, mine.id);
  });

  it("every process of a deployment dispatches the same way: a process with another queue= refuses to start", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const first = await openStores(`${REDIS_URL}?prefix=${prefix}&queue=store`);
    const same = await openStores(`${REDIS_URL}?prefix=${prefix}&queue=store`);
    await assert.rejects(openStores(`${REDIS_URL}?prefix=${prefix}`), /dispatched with queue=store, not queue=bullmq/);
    await assert.rejects(openStores(`${REDIS_URL}?prefix=${prefix}&queue=bullmq`), /every process of a deployment/);
    // A server closes what the stores opened (the queue's connections too).
    for (const stores of [first, same]) await pair({ stores, runJobs: false }).server.close();
  });

  it("switching from BullMQ to the store as the queue: a job queued under BullMQ is claimed (review, round 3 session 11)", async () => {
    // Before: the job was only in the global queued set, and claims read only the tools' sets: it never ran.
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const api = pair({ stores: await openStores(`${REDIS_URL}?prefix=${prefix}`), runJobs: false });
    const { job_id } = (await api.client.call("start_long_task", { seconds: 1, payload: { moved: true } })) as { job_id: string };
    await api.server.close();
    const raw = connect();
    assert.equal(await raw.zcard(`${prefix}queued`), 1);
    assert.equal(await raw.exists(`${prefix}queued:start_long_task`), 0);
    await raw.del(`${prefix}dispatch`);
    const stores = await openStores(`${REDIS_URL}?prefix=${prefix}&queue=store`);
    assert.equal(await raw.zcard(`${prefix}queued:start_long_task`), 1, "handed over when the store became the queue");
    assert.equal(await raw.get(`${prefix}dispatch`), "store");
    const worker = pair({ stores, runJobs: true });
    try {
      // Each long poll ends at the job's next change (claimed, progress, done): a bounded number of them.
      let result = await worker.client.poll(job_id);
      for (let i = 0; i < 20 && result.status === "running"; i++) result = await worker.client.poll(job_id, { waitMs: 5000 });
      assert.deepEqual([result.status, result.result], ["done", { moved: true }]);
    } finally {
      await worker.server.close();
    }
  });

  it("a handover cut short (its process died) is done by the next process of the store as the queue (review, round 3 session 11)", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const raw = connect();
    const bull = new RedisJobStore(connect(), { prefix, toolQueues: false });
    const jobs = [newJob("a"), newJob("b"), newJob("a")];
    for (const j of jobs) await bull.create(j);
    // An entry whose job is gone (deleted by hand, evicted) is dropped: nothing could claim it.
    await raw.zadd(`${prefix}queued`, 1, "gone");
    // What a process that died while handing over leaves: the record still says so.
    await raw.set(`${prefix}dispatch`, "store, handing over");
    // A BullMQ process is still refused, by the way the record names.
    await assert.rejects(openStores(`${REDIS_URL}?prefix=${prefix}`), /dispatched with queue=store, not queue=bullmq/);
    const stores = await openStores(`${REDIS_URL}?prefix=${prefix}&queue=store`);
    try {
      assert.equal(await raw.get(`${prefix}dispatch`), "store");
      assert.deepEqual(await raw.zrange(`${prefix}queued:a`, "0", "-1"), [jobs[0]?.id, jobs[2]?.id]);
      assert.deepEqual(await raw.zrange(`${prefix}queued:b`, "0", "-1"), [jobs[1]?.id]);
      assert.equal(await raw.zscore(`${prefix}queued`, "gone"), null);
      // Done once: a later process finds the record settled and hands nothing over.
      await raw.zrem(`${prefix}queued:b`, jobs[1]?.id as string);
      const later = await openStores(`${REDIS_URL}?prefix=${prefix}&queue=store`);
      assert.equal(await raw.zcard(`${prefix}queued:b`), 0);
      await pair({ stores: later, runJobs: false }).server.close();
    } finally {
      await pair({ stores, runJobs: false }).server.close();
    }
  });

  it("the handover reads whatever the queued set holds: each job lands in its own tool's set at its score, an entry without a job is dropped (generative)", async () => {
    const raw = connect();
    // Tools with odd names (a brace would move a Cluster slot if a key were built wrongly), some entries without a job.
    const entry = fc.record({ tool: fc.constantFrom("a", "b", "x{y}", "naïve tool"), gone: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 60 }), async (entries) => {
        const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
        const bull = new RedisJobStore(connect(), { prefix, toolQueues: false });
        const expected = new Map<string, [string, string][]>();
        for (const [k, e] of entries.entries()) {
          if (e.gone) {
            await raw.zadd(`${prefix}queued`, k, `gone-${k}`);
            continue;
          }
          const j = newJob(e.tool, `c${k}`);
          await bull.create(j);
          const score = (await raw.zscore(`${prefix}queued`, j.id)) as string;
          expected.set(e.tool, [...(expected.get(e.tool) ?? []), [j.id, score]]);
        }
        const store = new RedisJobStore(connect(), { prefix });
        await store.indexQueuedByTool();
        for (const tool of ["a", "b", "x{y}", "naïve tool"]) {
          const held = await raw.zrange(`${prefix}queued:${tool}`, "0", "-1", "WITHSCORES");
          const pairs: [string, string][] = [];
          for (let i = 0; i < held.length; i += 2) pairs.push([held[i] as string, held[i + 1] as string]);
          const want = [...(expected.get(tool) ?? [])].sort((x, y) => Number(x[1]) - Number(y[1]) || (x[0] < y[0] ? -1 : 1));
          assert.deepEqual(pairs, want);
        }
        const left = await raw.zrange(`${prefix}queued`, "0", "-1");
        assert.equal(left.filter((id) => id.startsWith("gone-")).length, 0);
        assert.equal(left.length, entries.filter((e) => !e.gone).length);
      }),
      { numRuns: 15 },
    );
  });

  it("publishes each queued job's tool (created or requeued) only when asked to", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const channel = `${prefix}queued`;
    const listener = connect();
    const heard: string[] = [];
    listener.on("message", (_c: string, message: string) => heard.push(message));
    await listener.subscribe(channel);
    const silent = new RedisJobStore(connect(), { prefix });
    await silent.create(newJob("quiet"));
    const store = new RedisJobStore(connect(), { prefix, queuedChannel: channel });
    const j = newJob("loud");
    await store.create(j);
    await store.start(j.id, "w", Date.now() + 60_000);
    assert.equal(await store.requeue(j.id, 5), "queued");
    // The fence: a message published after ours arrives after them.
    await connect().publish(channel, "fence");
    await until(async () => heard.includes("fence"), 5000, "the fence");
    assert.deepEqual(heard, ["q:loud", "q:loud", "fence"]);
    listener.disconnect();
  });

  it("the script that cancels a running job tells the worker running it (review, round 3 session 11): publishes the id on the cancel channel when a running job is cancelled, whatever the canceller last read, and not for a queued one", async () => {
    // Before: the API replica published only when its own read (before the cancel) saw the job running, so a
    // job claimed between that read and the cancel ran on until the worker's next heartbeat.
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const { cancel } = redisQueueChannels(prefix);
    const listener = connect();
    const heard: string[] = [];
    listener.on("message", (_c: string, message: string) => heard.push(message));
    await listener.subscribe(cancel);
    const store = new RedisJobStore(connect(), { prefix });
    const queued = newJob("t");
    const running = newJob("t");
    const finished = newJob("t");
    for (const j of [queued, running, finished]) await store.create(j);
    await store.start(running.id, "w", Date.now() + 60_000);
    await store.start(finished.id, "w", Date.now() + 60_000);
    await store.finish(finished.id, { state: "done", result: {} });
    assert.equal((await store.cancel(queued.id))?.state, "cancelled");
    assert.equal((await store.cancel(running.id))?.state, "cancelled");
    assert.equal((await store.cancel(finished.id))?.state, "done");
    assert.equal((await store.cancel(running.id))?.state, "cancelled"); // a second cancel ends nothing
    await connect().publish(cancel, "fence");
    await until(async () => heard.includes("fence"), 5000, "the fence");
    assert.deepEqual(heard, [running.id, "fence"]);
    listener.disconnect();
  });
});

describe("redis: claiming workers wake on the store's publishes, not on their poll", () => {
  it("a worker that polls once a minute runs a job queued by another server at once, and aborts it when cancelled there", async () => {
    const prefix = `${RUN}${randomUUID().slice(0, 8)}:`;
    const queuedChannel = `${prefix}queued`;
    const { tool: held, started, aborted } = heldJobTool();
    // A minute between polls and a two-minute lease (heartbeat): only the publishes can be this quick.
    const queue: JobQueueFactory = (deps) =>
      new RedisClaimQueue({
        ...deps,
        connections: { open: async () => connect() },
        prefix,
        pollMs: 60_000,
      });
    const side = (runJobs: boolean) =>
      pair({
        tools: [held],
        jobStore: new RedisJobStore(connect(), { prefix, queuedChannel }),
        nonceStore: new RedisNonceStore(connect(), { prefix }),
        jobQueue: queue,
        runJobs,
        jobLeaseMs: 120_000,
      });
    const api = side(false);
    const worker = side(true);
    const probe = connect();
    try {
      // The worker listens before anything is queued (a publish before it subscribed would wait for the poll).
      await until(
        async () => {
          const counts = (await probe.call("PUBSUB", "NUMSUB", queuedChannel, `${prefix}cancel`)) as (string | number)[];
          return Number(counts[1]) === 1 && Number(counts[3]) === 1;
        },
        10_000,
        "the worker to subscribe",
      );
      const { job_id } = (await api.client.call("held", { tag: "a" })) as { job_id: string };
      await until(() => started.has("a"), 10_000, "the worker to start the job");
      assert.equal((await api.client.cancel(job_id)).state, "cancelled");
      await until(() => aborted.has("a"), 10_000, "the worker to abort the job");
    } finally {
      await api.server.close();
      await worker.server.close();
    }
  });
});
