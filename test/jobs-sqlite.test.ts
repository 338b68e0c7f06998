import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PollingJobQueue, SqliteJobStore, SqliteNonceStore } from "../src/index.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { pair, signedEnvelope } from "./helpers.js";

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

describe("SQLite unusable: fail closed", () => {
  it("answers unavailable when the database cannot be used, and runs nothing", async () => {
    const path = file();
    const nonceStore = new SqliteNonceStore(path);
    const jobStore = new SqliteJobStore(path);
    const { server } = pair({ nonceStore, jobStore });
    const answer = await server.handle(signedEnvelope());
    assert.equal(answer.response.status, "ok");
    await nonceStore.close(); // better-sqlite3 now throws on every statement, as with a broken file
    const down = await server.handle(signedEnvelope());
    assert.equal(down.httpStatus, 503);
    assert.equal(down.response.result?.code, "unavailable");
    await jobStore.close();
    const fresh = new SqliteNonceStore(path);
    const jobsDown = pair({ nonceStore: fresh, jobStore }).server;
    const job = await jobsDown.handle(signedEnvelope({ tool: "start_long_task", args: { seconds: 1 } }));
    assert.equal(job.response.result?.code, "unavailable");
    await fresh.close();
    await server.close();
  });
});
