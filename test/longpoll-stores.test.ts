// Held polls cost no busy work on the shared stores: what a held poll reads
// does not grow with how long it is held (Redis: pub/sub, no polling loop),
// except SQLite's one cross-process check of the watched versions.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { demoTools, MemoryNonceStore, type SmcpClient } from "../src/index.js";
import { RedisJobStore } from "../src/redis.js";
import { SqliteJobStore } from "../src/sqlite.js";
import { pair } from "./helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

// An API replica (no worker here): the job stays queued, and nothing but the poll touches the store.
async function queuedJob(client: SmcpClient): Promise<string> {
  return ((await client.call("start_long_task", { seconds: 20, payload: {} })) as { job_id: string }).job_id;
}

describe("SQLite: a held poll's only periodic read is the cross-process version check", () => {
  const executed = new Map<string, number>();
  // Every statement better-sqlite3 runs, counted by its SQL.
  const statement = Object.getPrototypeOf(new Database(":memory:").prepare("SELECT 1")) as Record<string, unknown>;
  for (const method of ["run", "get", "all", "iterate"]) {
    const original = statement[method] as (...args: unknown[]) => unknown;
    statement[method] = function (this: { source: string }, ...args: unknown[]) {
      executed.set(this.source, (executed.get(this.source) ?? 0) + 1);
      return original.apply(this, args);
    };
  }
  const snapshot = () => new Map(executed);
  const since = (before: Map<string, number>) => {
    const out = new Map<string, number>();
    for (const [sql, n] of executed) if (n !== (before.get(sql) ?? 0)) out.set(sql, n - (before.get(sql) ?? 0));
    return out;
  };
  const isCheck = (sql: string) => sql.includes("json_each(@ids)");

  it("held 60 ms or 600 ms: the same statements, but for the check every 50 ms; none once nothing is held", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "smcp-longpoll-")), "jobs.db");
    const { client, server } = pair({
      tools: demoTools,
      jobStore: new SqliteJobStore(path, { watchPollMs: 50 }),
      nonceStore: new MemoryNonceStore(),
      runJobs: false,
    });
    try {
      const jobId = await queuedJob(client);
      const held = async (waitMs: number) => {
        const before = snapshot();
        const answer = await client.poll(jobId, { waitMs, version: 1 });
        assert.equal(answer.result?.state, "queued");
        return since(before);
      };
      const short = await held(60);
      const long = await held(600);
      const others = (m: Map<string, number>) => [...m].filter(([sql]) => !isCheck(sql)).sort();
      assert.deepEqual(others(long), others(short), "reads other than the check do not grow with the wait");
      const checks = [...long].filter(([sql]) => isCheck(sql)).reduce((n, [, c]) => n + c, 0);
      assert.ok(checks >= 1 && checks <= 600 / 50 + 1, `${checks} checks in 600 ms`);
      const idle = snapshot();
      await new Promise((resolve) => setTimeout(resolve, 200)); // an idle window, observed
      assert.deepEqual([...since(idle)], [], "nothing runs while no poll is held");
    } finally {
      await server.close();
    }
  });
});

describe("Redis: a held poll sends the same commands however long it is held (pub/sub, no polling)", () => {
  const prefix = `smcp-test-${randomUUID().slice(0, 8)}:`;
  const redis = new Redis(REDIS_URL);
  after(async () => {
    redis.disconnect();
    await deleteKeys(prefix);
  });

  it("held 60 ms or 600 ms: the same commands on the store's connection", async () => {
    const sent: string[] = [];
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof redis.sendCommand;
    const { client, server } = pair({
      tools: demoTools,
      jobStore: new RedisJobStore(redis, { prefix }),
      nonceStore: new MemoryNonceStore(),
      runJobs: false,
    });
    try {
      const jobId = await queuedJob(client);
      await client.poll(jobId, { waitMs: 10, version: 1 }); // opens the subscriber once
      const held = async (waitMs: number) => {
        sent.length = 0;
        const answer = await client.poll(jobId, { waitMs, version: 1 });
        assert.equal(answer.result?.state, "queued");
        return [...sent].sort();
      };
      const short = await held(60);
      const long = await held(600);
      assert.deepEqual(long, short);
      // Read, the version check under the subscription, read again, and (a queued job) whether a worker takes its tool.
      assert.deepEqual(short, ["hget", "hgetall", "hgetall", "zrangebyscore"]);
    } finally {
      await server.close();
    }
  });
});
