import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryJobStore, MemoryNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { tenancyConformance } from "./conformance/tenancy.js";
import { heldJobTool, pair, until } from "./helpers.js";

jobStoreConformance(
  "memory",
  async ({ retentionMs }) => {
    let offset = 0;
    const store = new MemoryJobStore({ retentionMs, now: () => Date.now() + offset });
    return { store, advance: (ms) => (offset += ms) };
  },
  { shared: false },
);

tenancyConformance("memory", async ({ retentionMs }) => {
  let offset = 0;
  const store = new MemoryJobStore({ retentionMs, now: () => Date.now() + offset });
  // Memory's maps are private: what it holds shows as its size.
  return { store, advance: (ms) => (offset += ms), held: async () => ({ jobs: store.size, entries: [] }) };
});

serverJobConformance("memory", async () => ({ jobStore: new MemoryJobStore() }));

/** A memory replay cache on a clock of its own, moved only by `advance`. */
function memoryNonces(options: { maxBytes?: number } = {}) {
  let time = Date.now();
  const now = () => time;
  return {
    store: new MemoryNonceStore({ now, ...options }),
    now,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

nonceStoreConformance("memory", async () => memoryNonces(), {
  durable: false,
  injectedClock: true,
  capped: async () => ({ ...memoryNonces({ maxBytes: 64 * 1024 }), lifetimeMs: 60_000 }),
});

longPollConformance("memory", async () => ({ jobStore: new MemoryJobStore() }));

describe("a cancel stops the job this process runs, whatever state the canceller read (review, round 3 session 11)", () => {
  it("a job read as queued just before it was claimed is aborted at once, not at its next heartbeat", async () => {
    // Before: the cancel aborted the local run only when its own read (before the cancel) saw the job running.
    const { tool: held, started, aborted } = heldJobTool();
    // The read before the cancel sees the job as it was before a claim: queued (a claim raced it).
    let stale: string | undefined;
    class RacedStore extends MemoryJobStore {
      override async get(id: string) {
        const job = await super.get(id);
        if (job === undefined || id !== stale) return job;
        stale = undefined;
        return { ...job, state: "queued" as const, workerId: null, leaseUntil: null };
      }
    }
    // A two-minute lease: the heartbeat (a third of it) is far past the test's wait.
    const { server, client } = pair({ tools: [held], jobStore: new RacedStore(), jobLeaseMs: 120_000 });
    try {
      const { job_id } = (await client.call("held", { tag: "a" })) as { job_id: string };
      await until(() => started.has("a"), 5000, "the job to start");
      stale = job_id;
      assert.equal((await client.cancel(job_id)).state, "cancelled");
      assert.equal(stale, undefined, "the cancel read the raced state");
      await until(() => aborted.has("a"), 5000, "the job to be aborted");
    } finally {
      await server.close();
    }
  });
});
