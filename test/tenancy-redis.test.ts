import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import {
  type JsonObject,
  MemoryJobStore,
  MemoryNonceStore,
  type ServerOptions,
  type SmcpClient,
  type SmcpServer,
} from "../src/index.js";
import { openStores } from "../src/stores.js";
import { pair, until } from "./helpers.js";
import { type Child, freePort, start } from "./process-helpers.js";
import { deleteKeys, REDIS_URL, redisReady } from "./redis-helpers.js";

const RUN = `smcp-test-${randomUUID().slice(0, 8)}:`;
const servers: SmcpServer[] = [];
const children: Child[] = [];
after(async () => {
  for (const server of servers) await server.close();
  for (const child of children) await child.stop("SIGKILL");
  await deleteKeys(RUN);
});

function serverOf(options: Partial<ServerOptions>) {
  const made = pair({ runJobs: false, ...options });
  servers.push(made.server);
  return made;
}

async function send(server: SmcpServer, client: SmcpClient, tool: string, args: JsonObject) {
  const { envelope, body } = client.buildEnvelope(tool, args);
  const answer = await server.handle(body);
  return { http: answer.httpStatus, response: client.verifyResponse(answer.body, envelope.request_id) };
}

describe("the Redis rate limiter (issue 10)", () => {
  it("one client's limit holds across two servers sharing Redis; the other client keeps its own", async () => {
    const url = `${REDIS_URL}?prefix=${RUN}${randomUUID().slice(0, 8)}:`;
    const replicas = await Promise.all(
      [0, 1].map(async () => {
        const stores = await openStores(url);
        assert.ok(stores.rateLimiter, "a Redis store gives a shared limiter");
        return serverOf({
          jobStore: stores.jobStore,
          nonceStore: stores.nonceStore,
          ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
          limits: { rate: 1, burst: 2, rateLimiter: stores.rateLimiter },
        });
      }),
    );
    const answers = [];
    for (let i = 0; i < 8; i++) {
      const replica = replicas[i % 2] as (typeof replicas)[number];
      answers.push(await send(replica.server, replica.client, "batch_sum", { numbers: [i] }));
    }
    const allowed = answers.filter((a) => a.response.ok).length;
    // Each replica counting alone would let 3 through on each (6).
    assert.equal(allowed, 3, "rate 1 + burst 2, counted once across both replicas");
    for (const refused of answers.filter((a) => !a.response.ok)) {
      assert.equal(refused.http, 429);
      assert.equal(refused.response.result?.code, "rate_limited");
      assert.ok(
        Number.isSafeInteger((refused.response.result?.details as { retry_after_ms?: number } | undefined)?.retry_after_ms),
      );
    }
    const [a, b] = replicas as [(typeof replicas)[number], (typeof replicas)[number]];
    assert.equal((await send(a.server, a.other, "batch_sum", { numbers: [1] })).response.ok, true);
    assert.equal((await send(b.server, b.other, "batch_sum", { numbers: [1] })).response.ok, true);
  });

  it("Redis down: the limiter fails closed (503 unavailable), nothing stored or run, one outage reported; back up: served again", async () => {
    const port = await freePort();
    const redisArgs = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    let redis = await start("redis-server", redisArgs);
    await redisReady(port);
    children.push(redis);
    const stores = await openStores(`redis://127.0.0.1:${port}/0?prefix=${RUN}down:`);
    const rateLimiter = stores.rateLimiter;
    assert.ok(rateLimiter);
    const outages: boolean[] = [];
    const jobStore = new MemoryJobStore();
    // Only the limiter lives in this Redis: jobs and nonces stay in memory, so any refusal is the limiter's.
    const { server, client } = serverOf({
      jobStore,
      nonceStore: new MemoryNonceStore(),
      ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
      limits: { rateLimiter },
      observer: { store: (e) => outages.push(e.healthy) },
    });
    try {
      assert.equal((await send(server, client, "batch_sum", { numbers: [1] })).response.ok, true);
      await redis.stop("SIGTERM");
      const calls: [string, JsonObject][] = [
        ["batch_sum", { numbers: [2] }],
        ["start_long_task", { seconds: 1, payload: {} }],
        ["batch_sum", { numbers: [3] }],
      ];
      for (const [tool, args] of calls) {
        const answer = await send(server, client, tool, args);
        assert.equal(answer.http, 503);
        assert.equal(answer.response.result?.code, "unavailable");
      }
      assert.deepEqual(await jobStore.list({}), [], "nothing stored while the limiter is down");
      assert.deepEqual(outages, [false], "one outage, reported once");
      redis = await start("redis-server", redisArgs);
      await redisReady(port);
      children.push(redis);
      await until(
        async () => (await send(server, client, "batch_sum", { numbers: [4] })).response.ok,
        15_000,
        "the limiter to be back",
      );
      assert.deepEqual(outages, [false, true], "and its end, once");
    } finally {
      await Promise.allSettled([stores.jobStore.close(), stores.nonceStore.close()]);
    }
  });
});
