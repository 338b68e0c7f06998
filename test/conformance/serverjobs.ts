import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { z } from "zod";
import { defineTool, demoTools, type ServerOptions, SmcpError } from "../../src/index.js";
import { pair, until } from "../helpers.js";
import { Gates } from "../longpoll-helpers.js";

/** Rejects with the signal's reason when it aborts: a handler that honours its signal. */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** How many `stubborn` handlers run at once now, and the most ever seen. */
const stubbornRuns = { now: 0, max: 0 };

function gatedTools(gates: Gates) {
  const stubborn = defineTool({
    kind: "job",
    name: "stubborn",
    description: "ignores its abort signal: runs until the test opens its gate, long past its timeout",
    timeoutMs: 20,
    input: z.strictObject({ gate: z.string() }),
    output: z.strictObject({}),
    handler: async ({ gate }) => {
      stubbornRuns.now++;
      stubbornRuns.max = Math.max(stubbornRuns.max, stubbornRuns.now);
      gates.started.add(gate);
      await gates.wait(gate);
      stubbornRuns.now--;
      return {};
    },
  });
  const gated = defineTool({
    kind: "job",
    name: "gated",
    description: "waits for the test to open its gate",
    input: z.strictObject({ gate: z.string(), ignore_abort: z.boolean().default(false), idempotency_key: z.string().optional() }),
    output: z.strictObject({ gate: z.string() }),
    handler: async ({ gate, ignore_abort }, ctx) => {
      gates.started.add(gate);
      ctx.signal.addEventListener("abort", () => gates.aborted.add(gate));
      await ctx.progress({ stage: "started", gate });
      if (ignore_abort) await gates.wait(gate);
      else await Promise.race([gates.wait(gate), rejectOnAbort(ctx.signal)]);
      return { gate };
    },
  });
  const slow = defineTool({
    kind: "job",
    name: "slow",
    description: "never finishes by itself; times out",
    timeoutMs: 50,
    input: z.strictObject({ gate: z.string() }),
    output: z.strictObject({}),
    handler: async ({ gate }, ctx) => {
      await Promise.race([gates.wait(gate), rejectOnAbort(ctx.signal)]);
      return {};
    },
  });
  const crashing = defineTool({
    kind: "job",
    name: "crashing",
    description: "throws",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: async () => {
      throw new Error("internal detail that must not leak");
    },
  });
  const badOutput = defineTool({
    kind: "job",
    name: "bad_output_job",
    description: "returns the wrong shape",
    input: z.strictObject({}),
    output: z.strictObject({ n: z.number() }),
    handler: async () => ({ n: "x" }) as unknown as { n: number },
  });
  return [...demoTools, gated, slow, crashing, badOutput, stubborn];
}

/** Server-level job behaviour (SPEC §4, issue 2/4), run against any store setup. */
export function serverJobConformance(name: string, options: () => Promise<Partial<ServerOptions>>): void {
  describe(`server jobs: ${name}`, () => {
    const gates = new Gates();
    const closers: (() => Promise<void>)[] = [];
    after(async () => {
      for (const close of closers) await close();
    });
    const setup = async (extra: Partial<ServerOptions> = {}) => {
      const made = pair({ tools: gatedTools(gates), ...(await options()), ...extra });
      closers.push(() => made.server.close());
      return made;
    };

    it("progress is visible while running; done carries the result", async () => {
      const { client } = await setup();
      const { job_id } = (await client.call("gated", { gate: "p1" })) as { job_id: string };
      await until(async () => {
        const r = await client.poll(job_id);
        return r.status === "running" && (r.result?.progress as { stage?: string } | null)?.stage === "started";
      });
      const running = await client.poll(job_id);
      assert.equal(running.ok, true);
      assert.equal(running.result?.job_id, job_id);
      assert.equal(running.result?.state, "running");
      gates.open("p1");
      await until(async () => (await client.poll(job_id)).status === "done");
      const done = await client.poll(job_id);
      assert.deepEqual(done.result, { gate: "p1" });
    });

    it("list_jobs narrows by tool and state, and shows only the caller's jobs", async () => {
      const { client, other } = await setup();
      const { job_id: gatedId } = (await client.call("gated", { gate: "l1" })) as { job_id: string };
      const { job_id: longId } = (await client.call("start_long_task", { seconds: 20 })) as { job_id: string };
      const { job_id: othersId } = (await other.call("gated", { gate: "l2" })) as { job_id: string };
      type Listed = { jobs: { job_id: string; tool: string; state: string }[] };
      const listed = async (args: Record<string, unknown>) =>
        ((await client.call("list_jobs", args as Record<string, string>)) as Listed).jobs.map((j) => j.job_id);
      assert.deepEqual(await listed({ tool: "gated" }), [gatedId]);
      assert.deepEqual(await listed({ tool: "start_long_task" }), [longId]);
      assert.deepEqual(await listed({ tool: "no_such_tool" }), []);
      await client.cancel(longId);
      assert.deepEqual(await listed({ tool: "start_long_task", state: "cancelled" }), [longId]);
      assert.deepEqual(await listed({ tool: "gated", state: "cancelled" }), []);
      assert.ok(!(await listed({})).includes(othersId));
      // The filter is bounded like any argument: empty or over-long is bad_args, its value never echoed.
      const empty = await client.request("list_jobs", { tool: "" });
      assert.equal(empty.result?.code, "bad_args");
      const long = await client.request("list_jobs", { tool: "x".repeat(257) });
      assert.equal(long.result?.code, "bad_args");
      assert.ok(!JSON.stringify(long).includes("x".repeat(64)));
      gates.open("l1");
      gates.open("l2");
    });

    it("cancel fires the running handler's AbortSignal; the job reads error/cancelled", async () => {
      const { client } = await setup();
      const { job_id } = (await client.call("gated", { gate: "c1" })) as { job_id: string };
      await until(() => gates.started.has("c1"));
      const cancelled = await client.cancel(job_id);
      assert.deepEqual(cancelled, { job_id, state: "cancelled", cancelled: true });
      await until(() => gates.aborted.has("c1"), 10_000, "the handler's abort signal");
      const polled = await client.poll(job_id);
      assert.equal(polled.status, "error");
      assert.equal(polled.ok, false);
      assert.equal(polled.error, "cancelled: cancelled");
      assert.equal(polled.result?.code, "cancelled");
    });

    it("a handler that ignores the abort and finishes late does not overwrite cancelled", async () => {
      const { client, server } = await setup();
      const { job_id } = (await client.call("gated", { gate: "late", ignore_abort: true })) as { job_id: string };
      await until(() => gates.started.has("late"));
      await client.cancel(job_id);
      gates.open("late");
      await until(async () => (await server.jobStore.get(job_id))?.state === "cancelled");
      // Give the late result every chance to be written, by waiting for the runner to let go of it.
      await until(async () => (await server.jobStore.get(job_id))?.workerId === null);
      assert.equal((await client.poll(job_id)).result?.code, "cancelled");
    });

    it("a queued job that is cancelled never runs", async () => {
      const { client } = await setup({ jobConcurrency: 1 });
      const first = (await client.call("gated", { gate: "q-first" })) as { job_id: string };
      await until(() => gates.started.has("q-first"));
      const second = (await client.call("gated", { gate: "q-second" })) as { job_id: string };
      assert.equal((await client.poll(second.job_id)).result?.state, "queued");
      assert.equal((await client.cancel(second.job_id)).state, "cancelled");
      gates.open("q-first");
      gates.open("q-second");
      await until(async () => (await client.poll(first.job_id)).status === "done");
      const third = (await client.call("gated", { gate: "q-third" })) as { job_id: string };
      gates.open("q-third");
      await until(async () => (await client.poll(third.job_id)).status === "done");
      assert.equal(gates.started.has("q-second"), false);
    });

    it("a handler past its timeout is aborted and the job ends in tool_failed, as a sync call's timeout does", async () => {
      const { client } = await setup();
      const { job_id } = (await client.call("slow", { gate: "never" })) as { job_id: string };
      await until(async () => (await client.poll(job_id)).status === "error");
      const polled = await client.poll(job_id);
      assert.equal(polled.result?.code, "tool_failed");
      assert.equal(polled.error, "tool_failed: the tool timed out after 50 ms");
    });

    it("a handler that ignores its abort keeps its slot until it really ends: never more than the concurrency at once", async () => {
      const { client, server } = await setup({ jobConcurrency: 2 });
      stubbornRuns.max = 0;
      const names = Array.from({ length: 6 }, (_, i) => `stubborn-${name}-${i}`);
      const ids: string[] = [];
      for (const gate of names) ids.push(((await client.call("stubborn", { gate })) as { job_id: string }).job_id);
      // Let the running ones go only once both slots are full (or every job has started), six times over.
      const opened = new Set<string>();
      while (opened.size < names.length) {
        // ... and have timed out (their callers answered): only then is a slot held by an overdue run.
        await until(() => {
          const started = names.filter((n) => gates.started.has(n) && !opened.has(n)).length;
          const overdue = server.runs.overdueByTool().get("stubborn") ?? 0;
          return (started === 2 || started === names.length - opened.size) && overdue === started;
        });
        for (const gate of names.filter((n) => gates.started.has(n) && !opened.has(n))) {
          opened.add(gate);
          gates.open(gate);
        }
      }
      assert.ok(stubbornRuns.max <= 2, `${stubbornRuns.max} handlers ran at once with a concurrency of 2`);
      for (const id of ids) {
        await until(async () => (await client.poll(id)).status === "error");
        assert.equal((await client.poll(id)).error, "tool_failed: the tool timed out after 20 ms");
      }
      await until(() => server.runs.overdueByTool().size === 0, 5000, "the overdue runs to end");
    });

    it("a throwing handler ends in tool_failed with its message (hidden when told); a wrong shape in bad_output", async () => {
      const { client } = await setup();
      const crash = (await client.call("crashing", {})) as { job_id: string };
      const bad = (await client.call("bad_output_job", {})) as { job_id: string };
      await until(async () => (await client.poll(crash.job_id)).status === "error");
      const crashed = await client.poll(crash.job_id);
      assert.equal(crashed.result?.code, "tool_failed");
      assert.equal(crashed.error, "tool_failed: internal detail that must not leak");
      const hiding = await setup({ hideToolErrors: true });
      const hidden = (await hiding.client.call("crashing", {})) as { job_id: string };
      await until(async () => (await hiding.client.poll(hidden.job_id)).status === "error");
      assert.equal((await hiding.client.poll(hidden.job_id)).error, "tool_failed: the tool failed");
      await until(async () => (await client.poll(bad.job_id)).status === "error");
      assert.equal((await client.poll(bad.job_id)).result?.code, "bad_output");
    });

    it("idempotency_key: same args -> same job; different args -> bad_args conflict", async () => {
      const { client } = await setup();
      const a = (await client.call("gated", { gate: "i1", idempotency_key: "order-42" })) as { job_id: string };
      const b = (await client.call("gated", { gate: "i1", idempotency_key: "order-42" })) as { job_id: string };
      assert.equal(b.job_id, a.job_id);
      await assert.rejects(
        client.call("gated", { gate: "i2", idempotency_key: "order-42" }),
        (e: unknown) =>
          e instanceof SmcpError && e.code === "bad_args" && (e.details as { reason?: string }).reason === "idempotency_conflict",
      );
      gates.open("i1");
    });

    it("callAndWait returns the result and reports progress; its timeout cancels the job", async () => {
      const { client, server } = await setup();
      const seen: unknown[] = [];
      let firstId = "";
      // Bounded (it once hung in CI until the file's 10-minute timeout, on PostgreSQL): a job that never reads
      // done fails here in a minute, saying what the store holds.
      const waiting = client.callAndWait(
        "gated",
        { gate: "w1" },
        { pollIntervalMs: 10, timeoutMs: 60_000, onAccepted: (id) => (firstId = id), onProgress: (p) => seen.push(p) },
      );
      // The first run on a store that just opened (a cluster's BullMQ worker connecting) can take seconds on a busy machine.
      await until(() => seen.some((p) => (p as { stage?: string } | null)?.stage === "started"), 30_000, "the job to start");
      gates.open("w1");
      const result = await waiting.catch(async (error: unknown) => {
        const job = await server.jobStore.get(firstId).catch((e: unknown) => `unreadable: ${String(e)}`);
        assert.fail(`callAndWait did not end (${String(error)}); the store holds ${JSON.stringify(job)}`);
      });
      assert.deepEqual(result, { gate: "w1" });

      let jobId = "";
      await assert.rejects(
        client.callAndWait(
          "gated",
          { gate: "never-opened" },
          // Long enough for the start to be answered on every store (a cluster WAITs for a replica) on a busy machine.
          { timeoutMs: 1500, pollIntervalMs: 10, onAccepted: (id) => (jobId = id) },
        ),
        (e: unknown) => e instanceof SmcpError && e.code === "timeout",
      );
      await until(async () => (await server.jobStore.get(jobId))?.state === "cancelled");
    });

    it("a flood from one client: another client's job takes the next free slot, and its calls answer meanwhile (issue 10)", async (t) => {
      const { client, other, server } = await setup({ jobConcurrency: 2 });
      const before = performance.now();
      await other.call("batch_sum", { numbers: [1, 2] });
      const quiet = performance.now() - before;
      const flood = 500;
      const floodIds = await Promise.all(
        Array.from(
          { length: flood },
          async (_, i) => ((await client.call("gated", { gate: `flood-${i}` })) as { job_id: string }).job_id,
        ),
      );
      assert.equal(new Set(floodIds).size, flood);
      const startedFlood = () => [...gates.started].filter((g) => g.startsWith("flood-"));
      await until(() => startedFlood().length === 2, 20_000, "two flood jobs running");
      assert.ok((await server.jobStore.counts()).queued >= flood - 2, "the flood is queued");
      const { job_id: theirs } = (await other.call("gated", { gate: "after-flood" })) as { job_id: string };
      // The other client's requests answer while the flood waits (ordering, not speed: timings are a diagnostic).
      const during = performance.now();
      assert.deepEqual(await other.call("batch_sum", { numbers: [1, 2] }), { count: 2, total: 3 });
      t.diagnostic(`batch_sum: ${quiet.toFixed(1)} ms before the flood, ${(performance.now() - during).toFixed(1)} ms during it`);
      assert.equal((await other.poll(theirs)).result?.state, "queued");
      // One slot frees: it goes to the other client's job, not to the flood's next.
      gates.open(startedFlood()[0] as string);
      await until(() => gates.started.has("after-flood"), 20_000, "the other client's job to start");
      const order = [...gates.started].filter((g) => g.startsWith("flood-") || g === "after-flood");
      assert.equal(order.indexOf("after-flood"), 2, `started: ${order.slice(0, 5).join(", ")}`);
      gates.open("after-flood");
      await until(async () => (await other.poll(theirs)).status === "done", 20_000, "the other client's job to end");
      // Closing with the flood queued hands the running jobs back at once, even one BullMQ hands over while the
      // worker closes (it must not start: these jobs never end by themselves).
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("close() still waits on a job after 15 s")), 15_000);
      });
      try {
        await Promise.race([server.close(), stuck]);
      } finally {
        clearTimeout(timer);
      }
    });

    it("callAndWait throws the job's own error code", async () => {
      const { client } = await setup();
      await assert.rejects(
        client.callAndWait("crashing", {}, { pollIntervalMs: 10 }),
        (e: unknown) => e instanceof SmcpError && e.code === "tool_failed" && e.origin === "remote",
      );
    });
  });
}
