// Per-request bookkeeping on long-lived objects that neither adds nor deletes a Map or Set entry per request
// (BENCHMARKS, round 3 session 14: V8 reallocates a long-lived table in the old generation, and the major GCs that
// garbage costs were the tail): what each still has to do.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { z } from "zod";
import { defineTool } from "../src/index.js";
import { httpSettings } from "../src/server/http-common.js";
import { BodyDeadlines } from "../src/server/http-node.js";
import { invokeTool } from "../src/tools/invoke.js";
import { ToolRuns } from "../src/tools/runs.js";
import { followAbort } from "../src/util/abort.js";
import { until } from "./helpers.js";

describe("ToolRuns keeps a count per tool without deleting it", () => {
  it("names only the tools with runs now, at most max", () => {
    const runs = new ToolRuns();
    runs.started("a");
    runs.started("b");
    runs.started("b");
    assert.deepEqual(runs.runningTools(), ["a", "b"]);
    runs.ended("a");
    runs.ended("b");
    assert.deepEqual(runs.runningTools(), ["b"]);
    runs.ended("b");
    assert.deepEqual(runs.runningTools(), []);
    // An end with no start (never expected) does not go below zero: the next start counts as one run.
    runs.ended("c");
    runs.started("c");
    assert.deepEqual(runs.runningTools(), ["c"]);
    runs.ended("c");
    assert.deepEqual(runs.runningTools(), []);
    for (const name of ["a", "b", "c", "d"]) runs.started(name);
    assert.deepEqual(runs.runningTools(2), ["a", "b"]);
  });
});

describe("BodyDeadlines, a list through its entries", () => {
  it("expires exactly the bodies past their deadline, and none that were forgotten", async () => {
    const deadlines = new BodyDeadlines({ ...httpSettings({}, undefined), bodyTimeoutMs: 40, minBodyRate: 0, bodyGraceMs: 10 });
    const expired: string[] = [];
    const entries = new Map<string, ReturnType<BodyDeadlines["add"]>>();
    for (const name of ["first", "middle", "last", "tail"]) {
      entries.set(
        name,
        deadlines.add(undefined, () => expired.push(name)),
      );
    }
    // Forgotten at the head, in the middle and at the tail: unlinked, never expired.
    deadlines.forget(entries.get("first") as ReturnType<BodyDeadlines["add"]>);
    deadlines.forget(entries.get("last") as ReturnType<BodyDeadlines["add"]>);
    deadlines.forget(entries.get("tail") as ReturnType<BodyDeadlines["add"]>);
    // Forgetting twice is harmless.
    deadlines.forget(entries.get("last") as ReturnType<BodyDeadlines["add"]>);
    await until(() => expired.length > 0, 5000, "the middle body's deadline");
    assert.deepEqual(expired, ["middle"]);
  });

  it("goes on past an expiry that forgets the next body (a shared socket closing)", async () => {
    const deadlines = new BodyDeadlines({ ...httpSettings({}, undefined), bodyTimeoutMs: 40, minBodyRate: 0, bodyGraceMs: 10 });
    const expired: string[] = [];
    let second: ReturnType<BodyDeadlines["add"]> | undefined;
    deadlines.add(undefined, () => {
      expired.push("one");
      deadlines.forget(second as ReturnType<BodyDeadlines["add"]>);
    });
    second = deadlines.add(undefined, () => expired.push("two"));
    deadlines.add(undefined, () => expired.push("three"));
    await until(() => expired.includes("three"), 5000, "the third body's deadline");
    assert.deepEqual(expired, ["one", "three"]);
    // All gone: a new body after that is timed again (the sweep timer restarts).
    deadlines.add(undefined, () => expired.push("four"));
    await until(() => expired.includes("four"), 5000, "a later body's deadline");
  });
});

describe("a run with a time limit follows the caller's signal only while it runs", () => {
  const tool = (handler: () => unknown) =>
    defineTool({
      name: "t",
      description: "a tool with a time limit",
      timeoutMs: 30_000,
      input: z.object({}),
      output: z.object({ ok: z.number() }),
      handler: handler as () => { ok: number },
    });
  const options = (signal: AbortSignal) => ({ signal, context: (s: AbortSignal) => s, report: () => {} });

  it("leaves nothing on a long-lived signal after 1,000 runs (AbortSignal.any left one entry per run on Node 20)", async () => {
    const shutdown = new AbortController();
    const quick = tool(() => ({ ok: 1 }));
    for (let i = 0; i < 1000; i++) {
      const outcome = await invokeTool(quick, {}, options(shutdown.signal));
      assert.equal(outcome.kind, "output");
    }
    // One standing listener for every run, not one per run.
    assert.equal(getEventListeners(shutdown.signal, "abort").length, 1);
    // Node keeps AbortSignal.any's bookkeeping (a set of the signals that depend on this one) and the listeners in
    // collections under symbols on the signal: none may have grown with the runs (the listener Map holds "abort").
    const largest = Object.getOwnPropertySymbols(shutdown.signal)
      .map((symbol) => (shutdown.signal as unknown as Record<symbol, unknown>)[symbol])
      .filter((value): value is { size: number } => typeof (value as { size?: unknown } | null)?.size === "number")
      .reduce((n, collection) => Math.max(n, collection.size), 0);
    assert.ok(largest <= 1, `a collection on the signal holds ${largest} entries`);
  });

  it("still aborts a running handler when the caller's signal aborts", async () => {
    const shutdown = new AbortController();
    let seen: AbortSignal | undefined;
    const slow = tool(() => {
      return new Promise(() => {}); // never settles: only the abort ends the run
    });
    const running = invokeTool(slow, {}, { ...options(shutdown.signal), context: (s: AbortSignal) => (seen = s) });
    shutdown.abort(new Error("shutting down"));
    const outcome = await running;
    assert.equal(outcome.kind, "aborted");
    assert.equal((outcome as { reason: Error }).reason.message, "shutting down");
    assert.equal(seen?.aborted, true);
  });
});

describe("followAbort", () => {
  it("gives a parent one listener for all its followers, aborts the linked ones with its reason, not the unlinked", () => {
    const parent = new AbortController();
    const followers = Array.from({ length: 20 }, () => followAbort(parent.signal));
    // Twenty in flight and one listener: no MaxListenersExceededWarning at eleven, as a listener each would give.
    assert.equal(getEventListeners(parent.signal, "abort").length, 1);
    for (const i of [0, 7, 19]) followers[i]?.unlink();
    followers[7]?.unlink(); // twice is harmless
    const reason = new Error("stop");
    parent.abort(reason);
    followers.forEach((f, i) => {
      const unlinked = i === 0 || i === 7 || i === 19;
      assert.equal(f.controller.signal.aborted, !unlinked, `follower ${i}`);
      if (!unlinked) assert.equal(f.controller.signal.reason, reason);
    });
    // After the abort: a new follower starts aborted, and unlinking the old ones is harmless.
    const late = followAbort(parent.signal);
    assert.equal(late.controller.signal.aborted, true);
    for (const f of followers) f.unlink();
  });
});
