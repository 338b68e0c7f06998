import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisNonceStore } from "../src/redis.js";
import { until } from "./helpers.js";
import { type Child, freePort, start } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const RUN = `smcp-test-${randomUUID().slice(0, 8)}:`;
const connections: Redis[] = [];
const children: Child[] = [];
after(async () => {
  await deleteKeys(RUN);
  for (const c of connections) c.disconnect();
  for (const child of children) await child.stop("SIGKILL");
});
const connect = (url = REDIS_URL) => {
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => 50 });
  connections.push(redis);
  return redis;
};

/** A redis-server of this test's own (its settings and counters are this test's alone), connected. */
async function privateRedis(): Promise<Redis> {
  const port = await freePort();
  children.push(await start("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]));
  const redis = connect(`redis://127.0.0.1:${port}/0`);
  await until(async () => (await redis.ping().catch(() => "")) === "PONG", 10_000, "redis-server to listen");
  return redis;
}

describe("Redis replay cache", () => {
  it("keys have a fixed length, a hash tag per client, and carry neither the client id nor the nonce", async () => {
    const redis = connect();
    const prefix = `${RUN}a:`;
    const store = new RedisNonceStore(redis, { prefix });
    const cases = [
      ["c1", "n"],
      ["c1", "x".repeat(500)],
      ["c2", "n"],
      ["a-client-id-of-some-length", randomUUID()],
      ["ключ", "nonce-✓-\u{1F600}"],
    ] as const;
    const keys = cases.map(([c, n]) => store.key(c, n));
    const shape = new RegExp(`^${prefix}nonce:\\{[A-Za-z0-9_-]{8}\\}:[A-Za-z0-9_-]{22}$`);
    for (const [k, key] of keys.entries()) {
      assert.match(key, shape);
      assert.equal(key.length, (keys[0] as string).length);
      const [c, n] = cases[k] as readonly [string, string];
      // (Ids long enough not to turn up in base64url by chance.)
      if (c.length >= 4) assert.ok(!key.slice(prefix.length).includes(c), key);
      if (n.length >= 4) assert.ok(!key.includes(n), key);
    }
    const tag = (key: string) => /\{(.*)\}/.exec(key)?.[1];
    assert.equal(tag(keys[0] as string), tag(keys[1] as string), "one client, one hash tag");
    assert.notEqual(tag(keys[0] as string), tag(keys[2] as string));
    // The key is the one written, with the pair's time to live.
    const expiresAt = Date.now() + 30_000;
    assert.equal(await store.reserve("c1", "n", expiresAt), true);
    const ttl = await redis.pttl(store.key("c1", "n"));
    assert.ok(ttl > 25_000 && ttl <= 30_000, `pttl ${ttl}`);
    assert.equal(await redis.get(store.key("c1", "n")), "1");
  });

  it("refuses to hold nonces in a Redis that may evict them (maxmemory with an evicting policy), and resumes once it may not", async () => {
    const redis = await privateRedis();
    await redis.config("SET", "maxmemory", "100mb");
    await redis.config("SET", "maxmemory-policy", "volatile-lru");
    const store = new RedisNonceStore(redis, { policyCheckEveryMs: 0 });
    await assert.rejects(
      store.reserve("c1", "n", Date.now() + 60_000),
      /maxmemory-policy volatile-lru.*set maxmemory-policy noeviction/,
    );
    assert.equal(await redis.dbsize(), 0, "nothing was written");
    await redis.config("SET", "maxmemory-policy", "noeviction");
    assert.equal(await store.reserve("c1", "n", Date.now() + 60_000), true);
    // No maxmemory: nothing is evicted whatever the policy says.
    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    await redis.config("SET", "maxmemory", "0");
    assert.equal(await store.reserve("c1", "m", Date.now() + 60_000), true);
    const stats = store.stats();
    assert.equal(stats.held, 2);
    assert.equal(stats.capacityBytes, undefined);
    assert.ok((stats.bytes ?? 0) > 0);
  });

  it("between two policy checks a reservation waits for none; a due check holds every reservation made while it runs (round 3, session 13)", async () => {
    const redis = await privateRedis();
    let now = Date.now();
    const store = new RedisNonceStore(redis, { policyCheckEveryMs: 60_000, now: () => now });
    // The store's INFO calls: Redis's count, less this test's own earlier readings of it.
    let readings = 0;
    const info = () => redis.info("commandstats").then((t) => Number(/cmdstat_info:calls=(\d+)/.exec(t)?.[1] ?? 0) - readings++);
    assert.equal(await store.reserve("c1", "a", now + 30_000), true);
    const checks = await info();
    // Redis may now evict, but the last reading (a minute is not over) stands: no check, reservations go through.
    await redis.config("SET", "maxmemory", "100mb");
    await redis.config("SET", "maxmemory-policy", "volatile-lru");
    assert.deepEqual(await Promise.all([store.reserve("c1", "b", now + 30_000), store.reserve("c1", "c", now + 30_000)]), [
      true,
      true,
    ]);
    assert.equal(await info(), checks, "no INFO between checks");
    // The minute is over: the next reservation starts a check, and every one made meanwhile waits for its answer.
    now += 60_000;
    const during = [store.reserve("c1", "d", now + 30_000), store.reserve("c1", "e", now + 30_000)];
    for (const r of during) await assert.rejects(r, /maxmemory-policy volatile-lru/);
    assert.equal(await info(), checks + 1, "one INFO for both");
    assert.equal(await redis.exists(store.key("c1", "d"), store.key("c1", "e")), 0, "nothing was written");
    // The refusal stands until the next check reads a policy that keeps every key.
    await redis.config("SET", "maxmemory-policy", "noeviction");
    await assert.rejects(store.reserve("c1", "d", now + 30_000), /volatile-lru/);
    now += 60_000;
    assert.equal(await store.reserve("c1", "d", now + 30_000), true);
    await store.close();
  });
});

describe("Redis replay cache: a turn's reservations in one call (round 3, session 8)", () => {
  it("one event-loop turn's reservations reach Redis as one script call, one SET per pair, replays in the turn refused", async () => {
    const redis = await privateRedis();
    const store = new RedisNonceStore(redis);
    const expiresAt = Date.now() + 30_000;
    // One call before counting: the script is loaded and the policy read.
    assert.equal(await store.reserve("warm", "up", expiresAt), true);
    await redis.config("RESETSTAT");
    // 250 pairs of 5 clients, then 50 of them again, all queued in this turn.
    const pairs = Array.from({ length: 250 }, (_, i) => [`client-${i % 5}`, `nonce-${i}`] as const);
    const again = pairs.slice(100, 150);
    const results = await Promise.all([...pairs, ...again].map(([c, n]) => store.reserve(c, n, expiresAt)));
    assert.deepEqual(results, [...pairs.map(() => true), ...again.map(() => false)]);
    const stats = await redis.info("commandstats");
    const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, "m").exec(stats)?.[1] ?? 0);
    assert.equal(calls("evalsha") + calls("eval"), 1, stats);
    assert.equal(calls("set"), 300, stats);
    // Each pair's key holds its own time to live.
    const ttl = await redis.pttl(store.key("client-3", "nonce-3"));
    assert.ok(ttl > 25_000 && ttl <= 30_000, `pttl ${ttl}`);
  });

  it("a refused call fails its batch closed, and the store answers again once Redis does", async () => {
    // Listening first (connectRedis fails fast on a server not yet up), then opened as a server opens it.
    const { port } = (await privateRedis()).options;
    const { connectRedis, parseRedisUrl } = await import("../src/redis.js");
    const redis = await connectRedis(parseRedisUrl(`redis://127.0.0.1:${port}/0`));
    connections.push(redis);
    const store = new RedisNonceStore(redis);
    const expiresAt = Date.now() + 30_000;
    assert.equal(await store.reserve("c", "before", expiresAt), true);
    // Scripts refused (as a server whose ACL forbids them, or a Redis busy with another script, would).
    await redis.call("ACL", "SETUSER", "default", "-evalsha", "-eval");
    const refused = await Promise.allSettled(["a", "b", "before"].map((n) => store.reserve("c", n, expiresAt)));
    assert.ok(
      refused.every((r) => r.status === "rejected"),
      JSON.stringify(refused),
    );
    await redis.call("ACL", "SETUSER", "default", "+evalsha", "+eval");
    assert.deepEqual(await Promise.all(["a", "b", "before"].map((n) => store.reserve("c", n, expiresAt))), [true, true, false]);
  });
});

describe("Redis replay cache: fail closed (review, round 3 session 8)", () => {
  it("an answer of another shape than one entry per reservation is believed for none of them", async () => {
    const redis = connect();
    // The command name the store would define, taken first by a script answering one entry too many.
    redis.defineCommand("smcp_reserve", { lua: "local out = {} for i = 1, #KEYS + 1 do out[i] = 1 end return out" });
    const store = new RedisNonceStore(redis, { prefix: `${RUN}shape:` });
    const results = await Promise.allSettled(["a", "b", "c"].map((n) => store.reserve("c", n, Date.now() + 30_000)));
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected", "rejected"],
    );
    assert.match(String((results[0] as PromiseRejectedResult).reason), /does not match its reservations/);
  });

  it("a reservation waiting for the policy check when the store closes is refused, not taken after close", async () => {
    const redis = connect();
    const store = new RedisNonceStore(redis, { prefix: `${RUN}closing:`, policyCheckEveryMs: 0 });
    const pending = store.reserve("c", "late", Date.now() + 30_000);
    const closed = store.close();
    assert.equal(store.close(), closed, "a second close is the same close");
    await closed;
    await assert.rejects(pending, /closed/);
    assert.equal(await redis.exists(store.key("c", "late")), 0, "nothing written");
  });
});

describe("Redis replay cache beside the rate limiter on one connection (regression, round 3 session 7)", () => {
  it("a replayed nonce is refused when the first rate charge (defining its Lua command) shares the turn", async () => {
    // With ioredis auto-pipelining on (reverted), a limiter created while a pipeline was queued threw inside
    // ioredis and shifted the batch's replies by one: the replay below read "OK", the last reserve hung.
    // Wired as openRedisStores wires them: the replay cache and rate-limiter-flexible on one connection.
    const { connectRedis, parseRedisUrl } = await import("../src/redis.js");
    const { RateLimiterRedis } = await import("rate-limiter-flexible");
    const redis = await connectRedis(parseRedisUrl(REDIS_URL));
    connections.push(redis);
    const nonceStore = new RedisNonceStore(redis, { prefix: `${RUN}lim:` });
    const expiresAt = Date.now() + 30_000;
    assert.equal(await nonceStore.reserve("c", "seen", expiresAt), true);
    // A reservation queued first (its SET issued, within this turn), then a limiter created and charged in the
    // same turn, as a server creates one on a client's first charge, then two more reservations.
    const first = nonceStore.reserve("c", "fresh1", expiresAt);
    await new Promise((resolve) => process.nextTick(resolve));
    const charge = new RateLimiterRedis({
      storeClient: redis,
      points: 100,
      duration: 1,
      keyPrefix: `${RUN}rate`,
      rejectIfRedisNotReady: true,
    }).consume("c");
    const [fresh1, charged, replay, fresh2] = await Promise.allSettled([
      first,
      charge,
      nonceStore.reserve("c", "seen", expiresAt),
      nonceStore.reserve("c", "fresh2", expiresAt),
    ]);
    assert.deepEqual(fresh1, { status: "fulfilled", value: true });
    assert.equal(charged.status, "fulfilled", String((charged as PromiseRejectedResult).reason));
    assert.deepEqual(replay, { status: "fulfilled", value: false }, "the replay is refused");
    assert.deepEqual(fresh2, { status: "fulfilled", value: true });
  });
});
