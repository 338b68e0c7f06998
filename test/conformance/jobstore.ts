import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import type { JobStore } from "../../src/index.js";

/** A store under test, with a settable clock. */
export interface StoreFixture {
  store: JobStore;
  /** Moves the store's clock forward. */
  advance(ms: number): void;
  /** Shared stores: a second handle on the same jobs (another connection or file handle, as another process has). */
  reopen?: () => JobStore;
}

/** Makes a fresh store with the given retention. */
export type StoreFactory = (options: { retentionMs: number }) => Promise<StoreFixture>;

// A lease far in the future: tests that need an expired one pass their own.
const LEASE = Date.now() + 3_600_000;

/** Whether a promise has settled by now (it is not awaited). */
function tracked(promise: Promise<void>): { settled: () => boolean; promise: Promise<void> } {
  let settled = false;
  const watched = promise.then(() => {
    settled = true;
  });
  return { settled: () => settled, promise: watched };
}

const job = (clientId = "c1", extra: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  clientId,
  tool: "start_long_task",
  args: { seconds: 1, payload: { a: 1 } },
  ...extra,
});

/**
 * The job-store contract (issue 2 and 4; watch: SPEC §8): the same on every
 * store; shared stores (whose fixtures can `reopen`) also across handles.
 */
export function jobStoreConformance(name: string, make: StoreFactory, options: { shared: boolean } = { shared: true }): void {
  describe(`JobStore conformance: ${name}`, () => {
    const stores: JobStore[] = [];
    const fresh = async (retentionMs = 60_000) => {
      const fixture = await make({ retentionMs });
      stores.push(fixture.store);
      return fixture;
    };
    after(async () => {
      for (const s of stores) await s.close();
    });

    it("create -> start -> progress -> finish, with compare-and-set at every step", async () => {
      const { store } = await fresh();
      const input = job();
      const { job: created, created: isNew } = await store.create(input);
      assert.equal(isNew, true);
      assert.equal(created.state, "queued");
      assert.equal(created.attempts, 0);
      assert.deepEqual(created.args, input.args);
      assert.equal(await store.progress(input.id, { done: 1 }), false, "no progress while queued");
      const running = await store.start(input.id, "w1", LEASE);
      assert.equal(running?.state, "running");
      assert.equal(running?.attempts, 1);
      assert.equal(running?.workerId, "w1");
      assert.equal(await store.start(input.id, "w2", LEASE), undefined, "a second worker cannot claim it");
      assert.equal(await store.progress(input.id, { done: 1, total: 2 }), true);
      assert.deepEqual((await store.get(input.id))?.progress, { done: 1, total: 2 });
      assert.equal(await store.finish(input.id, { state: "done", result: { ok: "yes", n: 1.5 } }), true);
      const done = await store.get(input.id);
      assert.equal(done?.state, "done");
      assert.deepEqual(done?.result, { ok: "yes", n: 1.5 });
      assert.ok(done?.expiresAt !== null && (done?.expiresAt ?? 0) > Date.now() - 1);
      assert.equal(await store.finish(input.id, { state: "error", error: { code: "tool_failed", message: "late" } }), false);
      assert.equal((await store.cancel(input.id))?.state, "done", "cancel does not touch a finished job");
      assert.equal(await store.progress(input.id, { done: 2 }), false);
    });

    it("a queued job that is cancelled never starts", async () => {
      const { store } = await fresh();
      const input = job();
      await store.create(input);
      const cancelled = await store.cancel(input.id);
      assert.equal(cancelled?.state, "cancelled");
      assert.deepEqual(cancelled?.error, { code: "cancelled", message: "cancelled" });
      assert.equal(await store.start(input.id, "w1", LEASE), undefined);
    });

    it("a late finish never overwrites cancelled", async () => {
      const { store } = await fresh();
      const input = job();
      await store.create(input);
      await store.start(input.id, "w1", LEASE);
      assert.equal((await store.cancel(input.id))?.state, "cancelled");
      assert.equal(await store.finish(input.id, { state: "done", result: { late: true } }), false);
      const after = await store.get(input.id);
      assert.equal(after?.state, "cancelled");
      assert.equal(after?.result, null);
    });

    it("errors are stored with code, message and details", async () => {
      const { store } = await fresh();
      const input = job();
      await store.create(input);
      await store.start(input.id, "w1", LEASE);
      await store.finish(input.id, { state: "error", error: { code: "bad_output", message: "m", details: [{ path: ["x"] }] } });
      assert.deepEqual((await store.get(input.id))?.error, { code: "bad_output", message: "m", details: [{ path: ["x"] }] });
    });

    it("requeue after a dead worker, then error once attempts run out", async () => {
      const { store } = await fresh();
      const input = job();
      await store.create(input);
      await store.start(input.id, "w1", LEASE);
      assert.equal(await store.requeue(input.id, 2), "queued");
      assert.equal((await store.start(input.id, "w2", LEASE))?.attempts, 2);
      assert.equal(await store.requeue(input.id, 2), "error");
      const failed = await store.get(input.id);
      assert.equal(failed?.state, "error");
      assert.equal(failed?.error?.code, "tool_failed");
      assert.equal(await store.requeue(input.id, 2), undefined, "only running jobs are requeued");
    });

    it("idempotency keys return the same job per client and tool", async () => {
      const { store } = await fresh();
      const first = await store.create(job("c1", { idempotencyKey: "k1" }));
      const again = await store.create(job("c1", { idempotencyKey: "k1" }));
      assert.equal(again.created, false);
      assert.equal(again.job.id, first.job.id);
      const otherClient = await store.create(job("c2", { idempotencyKey: "k1" }));
      assert.equal(otherClient.created, true);
      assert.notEqual(otherClient.job.id, first.job.id);
    });

    it("finished jobs expire after the retention time; unfinished ones do not", async () => {
      const { store, advance } = await fresh(1000);
      const finished = job("c1", { idempotencyKey: "expiring" });
      const open = job();
      await store.create(finished);
      await store.create(open);
      await store.start(finished.id, "w1", LEASE);
      await store.finish(finished.id, { state: "done", result: {} });
      advance(1001);
      assert.equal(await store.get(finished.id), undefined);
      assert.equal((await store.get(open.id))?.state, "queued");
      await store.sweep();
      // The idempotency key is free again once its job expired.
      assert.equal((await store.create(job("c1", { idempotencyKey: "expiring" }))).created, true);
    });

    it("lists a client's jobs, newest first", async () => {
      const { store, advance } = await fresh();
      const a = job("lister");
      const b = job("lister");
      await store.create(a);
      advance(5);
      await store.create(b);
      await store.create(job("someone-else"));
      const listed = await store.list({ clientId: "lister" });
      assert.deepEqual(
        listed.map((j) => j.id),
        [b.id, a.id],
      );
      assert.equal((await store.list({ clientId: "lister", limit: 1 })).length, 1);
      assert.equal((await store.list({ clientId: "lister", state: "running" })).length, 0);
    });

    it("lists by tool and state together, still per client", async () => {
      const { store, advance } = await fresh();
      const long = job("filterer");
      const other = job("filterer", { tool: "other_tool" });
      const done = job("filterer", { tool: "other_tool" });
      await store.create(long);
      advance(5);
      await store.create(other);
      advance(5);
      await store.create(done);
      await store.create(job("someone-else", { tool: "other_tool" }));
      await store.finish(done.id, { state: "done", result: {} });
      const ids = async (filter: Parameters<JobStore["list"]>[0]) => (await store.list(filter)).map((j) => j.id);
      assert.deepEqual(await ids({ clientId: "filterer", tool: "other_tool" }), [done.id, other.id]);
      assert.deepEqual(await ids({ clientId: "filterer", tool: "other_tool", state: "queued" }), [other.id]);
      assert.deepEqual(await ids({ clientId: "filterer", tool: "other_tool", limit: 1 }), [done.id]);
      assert.deepEqual(await ids({ clientId: "filterer", tool: "start_long_task" }), [long.id]);
      assert.deepEqual(await ids({ clientId: "filterer", tool: "no_such_tool" }), []);
    });

    it("claim starts the oldest queued job, once", async () => {
      const { store, advance } = await fresh();
      const first = job("claimer");
      const second = job("claimer");
      await store.create(first);
      advance(5);
      await store.create(second);
      const claimed = await store.claim("w1", LEASE);
      assert.equal(claimed?.id, first.id);
      assert.equal(claimed?.state, "running");
      assert.equal(claimed?.leaseUntil, LEASE);
      assert.equal((await store.claim("w2", LEASE))?.id, second.id);
      assert.equal(await store.claim("w3", LEASE), undefined);
    });

    it("heartbeat renews leases and reports jobs the worker no longer holds", async () => {
      const { store } = await fresh();
      const a = job();
      const b = job();
      await store.create(a);
      await store.create(b);
      await store.start(a.id, "w1", 1000);
      await store.start(b.id, "w1", 1000);
      await store.cancel(b.id); // cancelled from another process
      const lost = await store.heartbeat("w1", [a.id, b.id, "gone"], 5000);
      assert.deepEqual(lost.sort(), [b.id, "gone"].sort());
      assert.equal((await store.get(a.id))?.leaseUntil, 5000);
      assert.deepEqual(await store.heartbeat("w2", [a.id], 9000), [a.id], "another worker cannot renew it");
    });

    it("stale lists running jobs whose lease lapsed; requeue with staleBefore spares live ones", async () => {
      const { store } = await fresh();
      const dead = job();
      const alive = job();
      await store.create(dead);
      await store.create(alive);
      await store.start(dead.id, "w-dead", 1000);
      await store.start(alive.id, "w-alive", 10_000);
      const stale = await store.stale(5000);
      assert.deepEqual(
        stale.map((j) => j.id),
        [dead.id],
      );
      assert.equal(await store.requeue(alive.id, 3, 5000), undefined, "a live lease is not taken");
      assert.equal(await store.requeue(dead.id, 3, 5000), "queued");
      const requeued = await store.get(dead.id);
      assert.equal(requeued?.workerId, null);
      assert.equal(requeued?.leaseUntil, null);
      assert.equal((await store.claim("w2", LEASE))?.id, dead.id);
    });

    it("versions: 1 when created; a worker starting the job keeps it; progress, the end and cancel bump it", async () => {
      const { store } = await fresh();
      const a = job();
      const b = job();
      assert.equal((await store.create(a)).job.version, 1);
      await store.create(b);
      assert.equal((await store.start(a.id, "w1", LEASE))?.version, 1, "start is not a change a poll shows");
      assert.equal((await store.claim("w1", LEASE))?.version, 1, "nor is claim");
      await store.progress(a.id, { done: 1 });
      assert.equal((await store.get(a.id))?.version, 2);
      await store.progress(a.id, { done: 2 });
      await store.finish(a.id, { state: "done", result: {} });
      assert.equal((await store.get(a.id))?.version, 4);
      assert.equal(await store.finish(a.id, { state: "done", result: {} }), false);
      assert.equal((await store.get(a.id))?.version, 4, "a refused write changes nothing");
      assert.equal((await store.cancel(b.id))?.version, 2);
    });

    it("watch: at once for an unknown job or a version already past; at progress, the end, cancel and abort; never at start", async () => {
      const { store } = await fresh();
      const never = new AbortController().signal;
      // At once: these resolve without anything happening (a hang fails the test).
      await store.watch("no-such-job", 1, never);
      const a = job();
      const fence = job();
      await store.create(a);
      await store.create(fence);
      await store.watch(a.id, 7, never);

      // A worker starting the job wakes nobody: a change published after it (the fence) arrives first.
      const onA = tracked(store.watch(a.id, 1, never));
      const onFence = tracked(store.watch(fence.id, 1, never));
      await store.start(a.id, "w1", LEASE);
      await store.start(fence.id, "w1", LEASE);
      await store.progress(fence.id, { fence: 1 });
      await onFence.promise;
      assert.equal(onA.settled(), false, "start woke a watcher");

      await store.progress(a.id, { done: 1 });
      await onA.promise;
      const atEnd = tracked(store.watch(a.id, 2, never));
      await store.finish(a.id, { state: "done", result: {} });
      await atEnd.promise;

      const b = job();
      await store.create(b);
      const atCancel = store.watch(b.id, 1, never);
      await store.cancel(b.id);
      await atCancel;

      const c = job();
      await store.create(c);
      const controller = new AbortController();
      const aborted = store.watch(c.id, 1, controller.signal);
      controller.abort();
      await aborted;
      await store.watch(c.id, 1, controller.signal); // an aborted signal: at once
    });

    const shared = options.shared ? it : () => undefined; // memory: one process, no other handle
    shared("watch sees a change made through another handle on the same store (as by another process)", async () => {
      const fixture = await fresh();
      assert.ok(fixture.reopen, "a shared store's fixture opens a second handle");
      const other = fixture.reopen();
      stores.push(other);
      const a = job();
      await fixture.store.create(a);
      await other.start(a.id, "w-other", LEASE);
      const woken = fixture.store.watch(a.id, 1, new AbortController().signal);
      await other.progress(a.id, { from: "other" });
      await woken;
      assert.equal((await fixture.store.get(a.id))?.version, 2);
      const ended = fixture.store.watch(a.id, 2, new AbortController().signal);
      await other.finish(a.id, { state: "done", result: { from: "other" } });
      await ended;
      assert.equal((await fixture.store.get(a.id))?.state, "done");
    });

    it("unknown ids are undefined, never a crash", async () => {
      const { store } = await fresh();
      for (const id of ["nope", "__proto__", "constructor"]) {
        assert.equal(await store.get(id), undefined);
        assert.equal(await store.cancel(id), undefined);
        assert.equal(await store.start(id, "w", LEASE), undefined);
        assert.equal(await store.requeue(id, 3), undefined);
        assert.equal(await store.finish(id, { state: "done", result: {} }), false);
      }
    });
  });
}
