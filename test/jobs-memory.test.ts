import { MemoryJobStore, MemoryNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";

jobStoreConformance("memory", async ({ retentionMs }) => {
  let offset = 0;
  const store = new MemoryJobStore({ retentionMs, now: () => Date.now() + offset });
  return { store, advance: (ms) => (offset += ms) };
});

serverJobConformance("memory", async () => ({ jobStore: new MemoryJobStore() }));

nonceStoreConformance("memory", async () => ({ store: new MemoryNonceStore() }), { durable: false });
