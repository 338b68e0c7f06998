/**
 * One job policy (issue 19): the same random script of job events, driven
 * through the memory, SQLite, Redis and PostgreSQL job stores on one clock, gets the same
 * observable answers from each: which job a claim starts (the fair-turn
 * rule), turns, states, versions, errors (cancelled, attempts exhausted),
 * quotas, usage and listings.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { Redis } from "ioredis";
import type { JobRecord, JobStore } from "../src/index.js";
import { MemoryJobStore, SmcpError } from "../src/index.js";
import { PostgresJobStore } from "../src/postgres.js";
import { RedisJobStore } from "../src/redis.js";
import { SqliteJobStore } from "../src/sqlite.js";
import { runProperty } from "./fuzz/run.js";
import { Schemas, sql } from "./postgres-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const RUN = `smcp-diff-${randomUUID().slice(0, 8)}:`;
const dir = mkdtempSync(join(tmpdir(), "smcp-diff-"));
const redis = new Redis(REDIS_URL);
// PostgreSQL: one schema for the whole run, emptied before each script (a schema per script would be mostly DDL).
const schemas = new Schemas();
const postgres = await schemas.connect(2);
const schema = await schemas.migrated(postgres);
const emptyPostgres = () =>
  sql((c) => c.query(`TRUNCATE ${["jobs", "clients", "starts", "offers"].map((t) => `${schema}.${t}`).join(", ")}`));
after(async () => {
  await deleteKeys(RUN);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
  await schemas.dropAll();
});

const CLIENTS = ["a", "b", "c"] as const;
const TOOLS = ["x", "y"] as const;

type Event =
  | { op: "create"; client: number; tool: number; key: number | null; maxOpen: number | null }
  | { op: "start" | "cancel" | "progress" | "get"; job: number }
  | { op: "claim"; tools: number | null }
  | { op: "finish"; job: number; ok: boolean }
  | { op: "requeue"; job: number; maxAttempts: number; stale: boolean }
  | { op: "advance"; ms: number }
  | { op: "sweep" }
  | { op: "usage"; client: number }
  | { op: "list"; client: number | null };

const event: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("create" as const),
      client: fc.nat(2),
      tool: fc.nat(1),
      key: fc.option(fc.nat(2)),
      maxOpen: fc.option(fc.integer({ min: 1, max: 3 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("claim" as const), tools: fc.option(fc.nat(1)) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constantFrom("start" as const, "cancel" as const, "progress" as const, "get" as const),
      job: fc.nat(20),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("finish" as const), job: fc.nat(20), ok: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("requeue" as const),
      job: fc.nat(20),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
      stale: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 5000 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: "sweep" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("usage" as const), client: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("list" as const), client: fc.option(fc.nat(2)) }) },
);

/** What a caller can see of a job, without the fields a store fills from its own clock or process. */
function seen(job: JobRecord | undefined) {
  if (!job) return null;
  const { id, clientId, tool, state, attempts, version, turn, bytes, error, result, progress, expiresAt } = job;
  return { id, clientId, tool, state, attempts, version, turn, bytes, error, result, progress, expiresAt };
}

async function answer(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof SmcpError) return { refused: error.code, details: error.details };
    throw error;
  }
}

/** Plays the script on one store; returns every answer. */
async function play(store: JobStore, clock: { now: number }, events: Event[]): Promise<unknown[]> {
  const ids: string[] = [];
  const out: unknown[] = [];
  const lease = () => clock.now + 30_000;
  const idOf = (n: number) => ids[n % Math.max(1, ids.length)] ?? "none";
  for (const e of events) {
    switch (e.op) {
      case "create": {
        const id = `job-${ids.length}`;
        const got = await answer(async () => {
          const made = await store.create({
            id,
            clientId: CLIENTS[e.client] as string,
            tool: TOOLS[e.tool] as string,
            args: { n: ids.length },
            ...(e.key === null ? {} : { idempotencyKey: `k${e.key}` }),
            ...(e.maxOpen === null ? {} : { maxOpenJobs: e.maxOpen }),
          });
          if (made.created) ids.push(id);
          return { created: made.created, job: seen(made.job) };
        });
        out.push(got);
        break;
      }
      case "start":
        out.push(seen(await store.start(idOf(e.job), "w1", lease())));
        break;
      case "claim":
        out.push(seen(await store.claim("w1", lease(), e.tools === null ? undefined : [TOOLS[e.tools] as string])));
        break;
      case "cancel":
        out.push(seen(await store.cancel(idOf(e.job))));
        break;
      case "progress":
        out.push(await store.progress(idOf(e.job), { step: out.length }));
        break;
      case "get":
        out.push(seen(await store.get(idOf(e.job))));
        break;
      case "finish":
        out.push(
          await store.finish(
            idOf(e.job),
            e.ok
              ? { state: "done", result: { ok: out.length } }
              : { state: "error", error: { code: "tool_failed", message: "no" } },
          ),
        );
        break;
      case "requeue":
        out.push(await store.requeue(idOf(e.job), e.maxAttempts, e.stale ? clock.now + 60_000 : undefined));
        break;
      case "advance":
        clock.now += e.ms;
        out.push(null);
        break;
      case "sweep":
        out.push(await store.sweep(clock.now));
        break;
      case "usage":
        out.push(await store.usage(CLIENTS[e.client] as string));
        break;
      case "list": {
        const filter = e.client === null ? {} : { clientId: CLIENTS[e.client] as string };
        out.push((await store.list(filter)).map((job) => `${job.id}:${job.state}`));
        break;
      }
    }
  }
  out.push(await store.counts());
  return out;
}

describe("one job policy: memory, SQLite, Redis and PostgreSQL answer alike", () => {
  it("random scripts of job events get identical answers from every backend", async (t) => {
    let n = 0;
    await runProperty(
      t,
      fc.array(event, { minLength: 1, maxLength: 40 }),
      async (events) => {
        n++;
        const start = 1_800_000_000_000;
        const clocks = { memory: { now: start }, sqlite: { now: start }, redis: { now: start }, postgres: { now: start } };
        const retentionMs = 10_000;
        const stores: Record<keyof typeof clocks, JobStore> = {
          memory: new MemoryJobStore({ retentionMs, now: () => clocks.memory.now }),
          sqlite: new SqliteJobStore(join(dir, `${n}.db`), { retentionMs, now: () => clocks.sqlite.now }),
          redis: new RedisJobStore(redis, { prefix: `${RUN}${n}:`, retentionMs, now: () => clocks.redis.now }),
          postgres: new PostgresJobStore(postgres, { schema, retentionMs, now: () => clocks.postgres.now }),
        };
        await emptyPostgres();
        try {
          const memory = await play(stores.memory, clocks.memory, events);
          assert.deepEqual(await play(stores.sqlite, clocks.sqlite, events), memory, "SQLite differs from memory");
          assert.deepEqual(await play(stores.redis, clocks.redis, events), memory, "Redis differs from memory");
          assert.deepEqual(await play(stores.postgres, clocks.postgres, events), memory, "PostgreSQL differs from memory");
        } finally {
          await stores.memory.close();
          await stores.sqlite.close();
        }
      },
      // Four real stores per case: 10 s ran 37 cases with both cores busy under a soak, below the minimum.
      { runs: 400, seconds: 20, minRuns: 50 },
    );
  });
});
