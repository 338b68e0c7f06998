import type { OpenedStores, OpenStoresOptions } from "../../jobs/stores.js";
import { MemoryJobStore } from "./jobs.js";
import { MemoryNonceStore } from "./nonces.js";

/** Opens the in-process stores (`memory`: one process, lost on restart; every backend exports `open(url, options)`). */
export async function open(_url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  const retention = options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs };
  return { jobStore: new MemoryJobStore(retention), nonceStore: new MemoryNonceStore() };
}
