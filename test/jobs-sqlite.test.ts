import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PollingJobQueue, SqliteJobStore, SqliteNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";

const dir = mkdtempSync(join(tmpdir(), "smcp-sqlite-"));
let n = 0;
const file = () => join(dir, `db-${n++}.sqlite`);

jobStoreConformance("sqlite", async ({ retentionMs }) => {
  let offset = 0;
  const store = new SqliteJobStore(file(), { retentionMs, now: () => Date.now() + offset });
  return { store, advance: (ms) => (offset += ms) };
});

nonceStoreConformance("sqlite", async () => {
  const path = file();
  return { store: new SqliteNonceStore(path), reopen: () => new SqliteNonceStore(path) };
});

serverJobConformance("sqlite", async () => {
  const path = file();
  return {
    jobStore: new SqliteJobStore(path),
    nonceStore: new SqliteNonceStore(path),
    jobQueue: (deps) => new PollingJobQueue({ ...deps, pollMs: 20 }),
  };
});
