import { MemoryJobStore, MemoryNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { tenancyConformance } from "./conformance/tenancy.js";

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
