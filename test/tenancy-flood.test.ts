import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient, httpTransport } from "../src/index.js";
import { RedisJobStore } from "../src/redis.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  OTHER_CLIENT_ID,
  OTHER_CLIENT_SECRET,
  SERVE_KEYS,
  SERVER_ID,
  SERVER_SECRET,
  until,
} from "./helpers.js";
import { type Child, startCli } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const RUN = `smcp-test-${randomUUID().slice(0, 8)}:`;
const KEYS = SERVE_KEYS;
const ENV = { SMCP_CONFIG: "/nonexistent/keyring.json" };
const children: Child[] = [];
const connections: Redis[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
  for (const c of connections) c.disconnect();
  await deleteKeys(RUN);
});

describe("a flood on Redis/BullMQ with worker processes (issue 10)", () => {
  it("one client queues 500 jobs; another client's job starts within one slot's turn and its calls answer meanwhile", async (t) => {
    const prefix = `${RUN}flood:`;
    const store = `${REDIS_URL}?prefix=${prefix}`;
    const api = await startCli(["serve", "--port", "0", "--store", store, "--no-worker", ...KEYS], ENV);
    children.push(api);
    const worker = await startCli(["worker", "--store", store, "--concurrency", "2", "--log-format", "json"], ENV);
    children.push(worker);
    const url = `${api.line.replace(/^listening on /, "")}/mcp`;
    const make = (clientId: string, clientSecret: string) =>
      createClient({ clientId, clientSecret, serverId: SERVER_ID, serverSecret: SERVER_SECRET, transport: httpTransport(url) });
    const flooder = make(CLIENT_ID, CLIENT_SECRET);
    const other = make(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET);
    const redis = new Redis(REDIS_URL);
    connections.push(redis);
    const jobs = new RedisJobStore(redis, { prefix });

    const quietStart = performance.now();
    await other.call("batch_sum", { numbers: [1] });
    const quiet = performance.now() - quietStart;
    const floodIds: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const made = await Promise.all(
        Array.from(
          { length: 50 },
          async () => ((await flooder.call("start_long_task", { seconds: 2, payload: {} })) as { job_id: string }).job_id,
        ),
      );
      floodIds.push(...made);
    }
    const flood = new Set(floodIds);
    const startedFlood = async () => (await jobs.list({ clientId: CLIENT_ID })).filter((j) => j.attempts > 0).length;
    await until(async () => (await startedFlood()) >= 2, 20_000, "the worker to take flood jobs");
    const startedBefore = await startedFlood();
    const { job_id: theirs } = (await other.call("start_long_task", { seconds: 1, payload: { mine: true } })) as {
      job_id: string;
    };
    const duringStart = performance.now();
    assert.deepEqual(await other.call("batch_sum", { numbers: [2, 3] }), { count: 2, total: 5 });
    t.diagnostic(
      `batch_sum: ${quiet.toFixed(1)} ms before the flood, ${(performance.now() - duringStart).toFixed(1)} ms during it`,
    );
    // Without fair turns it would wait behind ~500 two-second jobs on two slots (over 8 minutes).
    await until(async () => (await other.poll(theirs)).status === "done", 30_000, "the other client's job");
    assert.deepEqual((await other.poll(theirs)).result, { mine: true });
    assert.ok((await jobs.counts()).queued > 400, "the flood is still queued");

    // The worker's own log says in which order it started jobs (its lines are flushed when it stops).
    assert.equal(await worker.stop("SIGTERM"), 0);
    const starts = worker
      .stderr()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg?: string; job_id?: string })
      .filter((line) => line.msg === "job started")
      .map((line) => line.job_id as string);
    const position = starts.indexOf(theirs);
    assert.ok(position >= 0, "the worker logged the other client's start");
    const floodFirst = starts.slice(0, position).filter((id) => flood.has(id)).length;
    // Started before it: what ran when it arrived, and at most one per slot that was freeing meanwhile.
    assert.ok(floodFirst <= startedBefore + 2, `${floodFirst} flood jobs started first (${startedBefore} when it arrived)`);
  });
});
