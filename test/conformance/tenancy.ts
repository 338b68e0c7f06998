import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { canonicalize, type JobRecord, type JobStore, type NewJob, SmcpError } from "../../src/index.js";

/** What a store's backend holds, for proving that a sweep left nothing behind. */
export interface HeldRecords {
  /** Job records held (SQLite rows, Redis job hashes, memory entries), expired or not. */
  jobs: number;
  /**
   * Every other name the backend holds: SQLite rows' ids, client counters and
   * idempotency keys; Redis keys (without the prefix), hash fields and index
   * members. Memory: none (its maps are private; `jobs` counts them).
   */
  entries: string[];
}

/** A store under test for issue 10 (fair turns, quotas, usage, retention, long-poll versions). */
export interface TenancyFixture {
  store: JobStore;
  /** Moves the store's clock forward (and its twin's). */
  advance(ms: number): void;
  /** What the backend holds now. */
  held(): Promise<HeldRecords>;
  /** Another store object on the same backend (another process would see it so), or undefined for memory. */
  twin?: () => Promise<JobStore>;
}

/** Makes a fresh, empty store with the given retention. */
export type TenancyFactory = (options: { retentionMs: number }) => Promise<TenancyFixture>;

// A lease far in the future.
const LEASE = Date.now() + 3_600_000;
const ARGS = { seconds: 1, payload: { note: "quota" } };
const ARG_BYTES = canonicalize(ARGS).length;

const newJob = (clientId: string, extra: Partial<NewJob> = {}): NewJob => ({
  id: randomUUID(),
  clientId,
  tool: "start_long_task",
  args: ARGS,
  ...extra,
});

/** A client id no other test uses (Redis and SQLite fixtures are fresh, but names in assertions must be unique). */
const someone = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** The refusal a store throws past a quota, checked in full. */
function isQuotaRefusal(reason: "open_jobs" | "stored_bytes") {
  return (error: unknown) => {
    assert.ok(error instanceof SmcpError, `expected SmcpError, got ${String(error)}`);
    assert.equal(error.code, "rate_limited");
    const details = error.details as { reason?: unknown; retry_after_ms?: unknown };
    assert.equal(details.reason, reason);
    assert.ok(
      Number.isSafeInteger(details.retry_after_ms) && (details.retry_after_ms as number) > 0,
      "an integer retry_after_ms",
    );
    return true;
  };
}

/** Claims every queued job, in the order the store hands them out. */
async function claimAll(store: JobStore): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  for (let job = await store.claim("w", LEASE); job; job = await store.claim("w", LEASE)) out.push(job);
  return out;
}

/** What a finished job's bytes must be: its canonical args, plus its stored result or error. */
function expectedBytes(job: JobRecord): number {
  const outcome = job.result ?? job.error;
  return canonicalize(job.args).length + (outcome === null ? 0 : canonicalize(outcome as never).length);
}

/** Resolves with whether `promise` settled before `other` did. */
async function settledFirst(promise: Promise<unknown>, other: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  await other;
  // `promise`'s own reaction ran before `other`'s if it had settled first (both are queued in settle order).
  await Promise.resolve();
  return done;
}

/** Issue 10 on a job store: the same on memory, SQLite and Redis. */
export function tenancyConformance(name: string, make: TenancyFactory): void {
  describe(`JobStore tenancy (issue 10): ${name}`, () => {
    const stores: JobStore[] = [];
    const fresh = async (retentionMs = 60_000) => {
      const fixture = await make({ retentionMs });
      stores.push(fixture.store);
      const twin = fixture.twin;
      if (twin) {
        fixture.twin = async () => {
          const other = await twin();
          stores.push(other);
          return other;
        };
      }
      return fixture;
    };
    after(async () => {
      for (const s of stores) await s.close();
    });

    describe("fair turns", () => {
      it("a flood of one client's jobs: another client's job is claimed next, the flood stays first-in first-out", async () => {
        const { store } = await fresh();
        const flood = someone("flood");
        const other = someone("other");
        const floodIds: string[] = [];
        for (let i = 0; i < 30; i++) floodIds.push((await store.create(newJob(flood))).job.id);
        const first = await store.claim("w", LEASE);
        assert.equal(first?.id, floodIds[0], "the oldest job goes first");
        const theirs = (await store.create(newJob(other))).job.id;
        const next = await store.claim("w", LEASE);
        assert.equal(next?.id, theirs, "the other client's job takes the very next slot, not the flood's second");
        const rest = await claimAll(store);
        assert.deepEqual(
          rest.map((j) => j.id),
          floodIds.slice(1),
          "the flood's own jobs start in the order they came",
        );
      });

      it("a newcomer behind a flood nobody has claimed yet goes within the first two claims", async () => {
        const { store } = await fresh();
        const flood = someone("flood");
        for (let i = 0; i < 30; i++) await store.create(newJob(flood));
        const theirs = (await store.create(newJob(someone("late")))).job.id;
        const order = (await claimAll(store)).map((j) => j.id);
        assert.ok(order.indexOf(theirs) <= 1, `claimed at position ${order.indexOf(theirs)} of ${order.length}`);
      });

      it("clients with queued jobs are served in turn: A B C A B A B ...", async () => {
        const { store } = await fresh();
        const [a, b, c] = [someone("a"), someone("b"), someone("c")];
        const made = new Map<string, string>();
        for (const [client, n] of [
          [a, 6],
          [b, 6],
          [c, 1],
        ] as const) {
          for (let i = 0; i < n; i++) made.set((await store.create(newJob(client))).job.id, client);
        }
        const order = (await claimAll(store)).map((j) => made.get(j.id));
        const label = (id: string | undefined) => (id === a ? "A" : id === b ? "B" : id === c ? "C" : "?");
        assert.equal(order.map(label).join(""), "ABCABABABABAB");
      });

      it("a client is not charged for jobs that ran while nobody else waited: its next job goes within one turn", async () => {
        const { store } = await fresh();
        const early = someone("early");
        const flood = someone("flood");
        // `early` ran ten jobs alone; its last one is still running.
        for (let i = 0; i < 10; i++) await store.create(newJob(early));
        const ran = await claimAll(store);
        for (const job of ran.slice(0, -1)) await store.finish(job.id, { state: "done", result: {} });
        for (let i = 0; i < 20; i++) await store.create(newJob(flood));
        const theirs = (await store.create(newJob(early))).job.id;
        const order = (await claimAll(store)).map((j) => j.id);
        // One job in service for `early` already: the flood may go once more at that turn, then once at the next.
        assert.ok(order.indexOf(theirs) <= 2, `claimed at position ${order.indexOf(theirs)} of ${order.length}`);
      });

      it("a requeued job keeps its place: it starts before its client's later jobs", async () => {
        const { store } = await fresh();
        const client = someone("requeued");
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await store.create(newJob(client))).job.id);
        const first = await store.claim("w1", LEASE);
        assert.equal(first?.id, ids[0]);
        assert.equal(await store.requeue(ids[0] as string, 3), "queued");
        assert.deepEqual(
          (await claimAll(store)).map((j) => j.id),
          ids,
        );
      });
    });

    describe("quotas", () => {
      it("maxOpenJobs: past it, rate_limited with retry_after_ms and nothing stored; an ended job frees a place; other clients unaffected", async () => {
        const { store } = await fresh();
        const client = someone("open");
        const quota = { maxOpenJobs: 2 };
        const a = (await store.create(newJob(client, quota))).job;
        const b = (await store.create(newJob(client, quota))).job;
        const refusedId = randomUUID();
        await assert.rejects(
          store.create(newJob(client, { ...quota, id: refusedId, idempotencyKey: "refused-key" })),
          isQuotaRefusal("open_jobs"),
        );
        assert.equal(await store.get(refusedId), undefined, "the refused job is not stored");
        assert.deepEqual(await store.usage(client), { open: 2, bytes: 2 * ARG_BYTES });
        assert.equal((await store.list({ clientId: client })).length, 2);
        // Another client at the same quota is unaffected.
        assert.equal((await store.create(newJob(someone("bystander"), quota))).created, true);
        // A running job still counts; an ended one does not.
        await store.start(a.id, "w", LEASE);
        await assert.rejects(store.create(newJob(client, quota)), isQuotaRefusal("open_jobs"));
        await store.finish(a.id, { state: "done", result: {} });
        const c = await store.create(newJob(client, { ...quota, idempotencyKey: "refused-key" }));
        assert.equal(c.created, true, "the refused request's idempotency key was never bound");
        await assert.rejects(store.create(newJob(client, quota)), isQuotaRefusal("open_jobs"));
        await store.cancel(b.id);
        assert.equal((await store.create(newJob(client, quota))).created, true, "a cancelled job frees its place");
      });

      it("an idempotent retry of a job already made is answered even at the quota", async () => {
        const { store } = await fresh();
        const client = someone("retry");
        const quota = { maxOpenJobs: 1, maxStoredBytes: ARG_BYTES };
        const made = await store.create(newJob(client, { ...quota, idempotencyKey: "once" }));
        const again = await store.create(newJob(client, { ...quota, idempotencyKey: "once" }));
        assert.equal(again.created, false);
        assert.equal(again.job.id, made.job.id);
      });

      it("maxStoredBytes: args count at create, results at finish; past it, rate_limited; the sweep gives the bytes back", async () => {
        const { store, advance } = await fresh(1000);
        const client = someone("bytes");
        const quota = { maxStoredBytes: 3 * ARG_BYTES };
        const a = (await store.create(newJob(client, quota))).job;
        await store.create(newJob(client, quota));
        await store.start(a.id, "w", LEASE);
        const result = { text: "r".repeat(ARG_BYTES) };
        await store.finish(a.id, { state: "done", result });
        assert.deepEqual(await store.usage(client), { open: 1, bytes: 2 * ARG_BYTES + canonicalize(result).length });
        const refusedId = randomUUID();
        await assert.rejects(store.create(newJob(client, { ...quota, id: refusedId })), isQuotaRefusal("stored_bytes"));
        assert.equal(await store.get(refusedId), undefined);
        assert.equal((await store.create(newJob(someone("bystander"), quota))).created, true, "other clients unaffected");
        advance(1001);
        assert.equal(await store.sweep(), 1);
        assert.deepEqual(await store.usage(client), { open: 1, bytes: ARG_BYTES });
        assert.equal((await store.create(newJob(client, quota))).created, true, "retention gave the bytes back");
      });

      it("concurrent creates never pass the quota (every create is one atomic check-and-insert)", async () => {
        const { store, twin } = await fresh();
        const others = twin ? [await twin(), await twin()] : [];
        const all = [store, ...others];
        const client = someone("race");
        const attempts = await Promise.allSettled(
          Array.from({ length: 24 }, (_, i) => (all[i % all.length] as JobStore).create(newJob(client, { maxOpenJobs: 5 }))),
        );
        assert.equal(attempts.filter((a) => a.status === "fulfilled").length, 5);
        for (const a of attempts) if (a.status === "rejected") isQuotaRefusal("open_jobs")(a.reason);
        assert.deepEqual(await store.usage(client), { open: 5, bytes: 5 * ARG_BYTES });
        assert.equal((await store.list({ clientId: client })).length, 5);

        const bytesClient = someone("race-bytes");
        const byBytes = await Promise.allSettled(
          Array.from({ length: 24 }, (_, i) =>
            (all[i % all.length] as JobStore).create(newJob(bytesClient, { maxStoredBytes: 3 * ARG_BYTES })),
          ),
        );
        assert.equal(byBytes.filter((a) => a.status === "fulfilled").length, 3);
        for (const a of byBytes) if (a.status === "rejected") isQuotaRefusal("stored_bytes")(a.reason);
        assert.deepEqual(await store.usage(bytesClient), { open: 3, bytes: 3 * ARG_BYTES });
      });
    });

    describe("usage, counts and retention", () => {
      it("usage() and counts() stay exact through create, claim, finish, cancel, requeue and sweep", async () => {
        const { store, advance } = await fresh(1000);
        const c1 = someone("c1");
        const c2 = someone("c2");
        const check = async (open: number, queued: number, running: number, finished: number) => {
          const mine = await store.list({ clientId: c1 });
          const bytes = mine.reduce((sum, j) => sum + j.bytes, 0);
          assert.deepEqual(await store.usage(c1), { open, bytes }, "usage is the sum of the client's jobs");
          assert.equal(mine.filter((j) => j.state === "queued" || j.state === "running").length, open);
          for (const job of mine) {
            if (job.state === "queued" || job.state === "running") assert.equal(job.bytes, canonicalize(job.args).length);
            else assert.equal(job.bytes, expectedBytes(job), `the bytes of a ${job.state} job: args and what it stored`);
          }
          assert.deepEqual(await store.counts(), { queued, running, finished });
        };
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await store.create(newJob(c1))).job.id);
        await store.create(newJob(c2));
        await check(4, 5, 0, 0);
        const [j1, j2, j3, j4] = ids as [string, string, string, string];
        assert.equal((await store.claim("w", LEASE))?.id, j1);
        await check(4, 4, 1, 0);
        await store.progress(j1, { step: 1 });
        await store.finish(j1, { state: "done", result: { out: "x".repeat(100) } });
        await check(3, 4, 0, 1);
        await store.cancel(j2);
        await check(2, 3, 0, 2);
        await store.start(j3, "w", LEASE);
        assert.equal(await store.requeue(j3, 3), "queued");
        await check(2, 3, 0, 2);
        await store.start(j3, "w", LEASE);
        assert.equal(await store.requeue(j3, 2), "error", "attempts spent");
        await check(1, 2, 0, 3);
        await store.start(j4, "w", LEASE);
        await store.finish(j4, { state: "error", error: { code: "tool_failed", message: "m", details: { k: [1, 2] } } });
        await check(0, 1, 0, 4);
        advance(1001);
        assert.equal(await store.sweep(), 4);
        await check(0, 1, 0, 0);
        assert.deepEqual(await store.usage(c1), { open: 0, bytes: 0 });
        assert.deepEqual(await store.usage(c2), { open: 1, bytes: ARG_BYTES });
      });

      it("sweep deletes expired jobs with their idempotency keys, indexes and counters, and only those", async () => {
        const { store, advance, held } = await fresh(1000);
        const gone = someone("gone");
        const stays = someone("stays");
        const later = someone("later");
        const swept: string[] = [];
        const make = async (client: string, extra: Partial<NewJob> = {}) => (await store.create(newJob(client, extra))).job.id;
        const done = await make(gone, { idempotencyKey: "sweep-key-done" });
        const failed = await make(gone, { idempotencyKey: "sweep-key-failed" });
        const cancelled = await make(gone);
        swept.push(done, failed, cancelled);
        await store.start(done, "w", LEASE);
        await store.finish(done, { state: "done", result: { big: "y".repeat(2000) } });
        await store.start(failed, "w", LEASE);
        await store.finish(failed, { state: "error", error: { code: "tool_failed", message: "m" } });
        await store.cancel(cancelled);
        const open = await make(stays, { idempotencyKey: "sweep-key-open" });
        const before = await held();
        assert.equal(before.jobs, 4);
        const names = (h: HeldRecords) => h.entries.filter((e) => swept.some((id) => e.includes(id)) || e.includes(gone));
        assert.equal(
          names(before).length > 0,
          before.entries.length > 0,
          "the backend names the jobs before the sweep (memory names nothing)",
        );

        assert.equal(await store.sweep(), 0, "nothing has expired yet");
        advance(500);
        const late = await make(later);
        await store.cancel(late); // finished later: expires later
        advance(501);
        assert.equal(await store.sweep(), 3);
        const afterSweep = await held();
        assert.equal(afterSweep.jobs, 2, "the open job and the one that finished later remain");
        assert.deepEqual(names(afterSweep), [], "no key, row, index entry or counter names a swept job or its client");
        assert.ok(!afterSweep.entries.some((e) => e.includes("sweep-key-done") || e.includes("sweep-key-failed")));
        assert.equal((await store.create(newJob(gone, { idempotencyKey: "sweep-key-done" }))).created, true);
        assert.equal((await store.get(open))?.state, "queued");
        assert.equal((await store.create(newJob(stays, { idempotencyKey: "sweep-key-open" }))).job.id, open);
        advance(1000);
        assert.equal(await store.sweep(), 1);
        // What is left belongs to live jobs only: the two queued ones and their client's counters.
        const end = await held();
        assert.equal(end.jobs, 2);
        assert.deepEqual(
          end.entries.filter((e) => e.includes(late) || e.includes(later)),
          [],
        );
      });
    });

    describe("versions and watch", () => {
      it("the version moves on progress and the end, not on start or requeue", async () => {
        const { store } = await fresh();
        const { job } = await store.create(newJob(someone("v")));
        assert.equal(job.version, 1);
        assert.equal((await store.start(job.id, "w", LEASE))?.version, 1);
        assert.equal(await store.requeue(job.id, 3), "queued");
        assert.equal((await store.get(job.id))?.version, 1);
        await store.start(job.id, "w", LEASE);
        await store.progress(job.id, { n: 1 });
        assert.equal((await store.get(job.id))?.version, 2);
        await store.finish(job.id, { state: "done", result: {} });
        assert.equal((await store.get(job.id))?.version, 3);
        assert.equal(await store.progress(job.id, { n: 2 }), false);
        assert.equal((await store.get(job.id))?.version, 3);
      });

      it("watch wakes on progress and on the end, not on start; at once when the version already differs; on abort", async () => {
        const { store } = await fresh();
        const client = someone("watch");
        const { job } = await store.create(newJob(client));
        const { job: marker } = await store.create(newJob(client));
        const never = new AbortController();
        // Already different (or unknown): at once.
        await store.watch(job.id, 0, never.signal);
        await store.watch("no-such-job", 1, never.signal);

        const onStart = store.watch(job.id, 1, never.signal);
        await store.start(job.id, "w", LEASE);
        // A change to another job, after the start: once its watch woke, any wake the start caused has arrived too.
        await store.start(marker.id, "w", LEASE);
        const markerWoke = store.watch(marker.id, 1, never.signal);
        await store.get(marker.id); // one round trip: the watch has read version 1, so only the change's own wake ends it
        await store.progress(marker.id, { mark: 1 });
        assert.equal(await settledFirst(onStart, markerWoke), false, "a worker picking the job up is not a change");
        await store.progress(job.id, { step: 1 });
        await onStart; // woken by progress
        assert.equal((await store.get(job.id))?.version, 2);

        const onEnd = store.watch(job.id, 2, never.signal);
        await store.finish(job.id, { state: "done", result: { r: 1 } });
        await onEnd;

        const aborted = new AbortController();
        const held = store.watch(marker.id, 2, aborted.signal);
        aborted.abort();
        await held;
        const cancelWatch = store.watch(marker.id, 2, never.signal);
        await store.cancel(marker.id);
        await cancelWatch;
      });

      it("watch on one store object wakes when another object on the same backend changes the job", async (t) => {
        const { store, twin } = await fresh();
        if (!twin) {
          // A real skip, reported as one: a memory store has no second object on the same jobs.
          t.skip("memory: one process, one object, nothing shared to wake from");
          return;
        }
        const other = await twin();
        const { job } = await store.create(newJob(someone("cross")));
        await other.start(job.id, "w", LEASE);
        const never = new AbortController();
        const waiting = store.watch(job.id, 1, never.signal);
        await other.progress(job.id, { from: "elsewhere" });
        await waiting;
        const ending = store.watch(job.id, 2, never.signal);
        await other.finish(job.id, { state: "done", result: {} });
        await ending;
        assert.equal((await store.get(job.id))?.state, "done");
      });
    });
  });
}
