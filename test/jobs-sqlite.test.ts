import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { ClaimingJobQueue } from "../src/index.js";
import { SqliteJobStore, SqliteNonceStore } from "../src/sqlite.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { tenancyConformance } from "./conformance/tenancy.js";
import { pair, signedEnvelope } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "smcp-sqlite-"));
let n = 0;
const file = () => join(dir, `db-${n++}.sqlite`);

jobStoreConformance("sqlite", async ({ retentionMs }) => {
  let offset = 0;
  const path = file();
  const store = new SqliteJobStore(path, { retentionMs, now: () => Date.now() + offset });
  return { store, advance: (ms) => (offset += ms), reopen: () => new SqliteJobStore(path, { retentionMs }) };
});

tenancyConformance("sqlite", async ({ retentionMs }) => {
  let offset = 0;
  const path = file();
  const now = () => Date.now() + offset;
  const store = new SqliteJobStore(path, { retentionMs, now });
  return {
    store,
    advance: (ms) => (offset += ms),
    twin: async () => new SqliteJobStore(path, { retentionMs, now }),
    // The rows themselves, read over a connection of its own.
    held: async () => {
      const db = new Database(path, { readonly: true });
      try {
        const jobs = db.prepare("SELECT id, client_id, idempotency_key FROM smcp_jobs").all() as {
          id: string;
          client_id: string;
          idempotency_key: string | null;
        }[];
        const clients = db.prepare("SELECT client_id FROM smcp_clients").all() as { client_id: string }[];
        return {
          jobs: jobs.length,
          entries: [
            ...jobs.flatMap((r) => [
              `job:${r.id}`,
              `job-client:${r.client_id}`,
              ...(r.idempotency_key ? [`idem:${r.idempotency_key}`] : []),
            ]),
            ...clients.map((r) => `client:${r.client_id}`),
          ],
        };
      } finally {
        db.close();
      }
    },
  };
});

/** A SQLite replay cache on a clock of its own (moved only by `advance`), and a second handle on the same file and clock. */
function sqliteNonces(options: { maxBytes?: number } = {}) {
  const path = file();
  let time = Date.now();
  const now = () => time;
  const store = new SqliteNonceStore(path, { now, ...options });
  return {
    store,
    now,
    advance: (ms: number) => {
      time += ms;
    },
    sweep: () => store.sweep(),
    reopen: () => new SqliteNonceStore(path, { now }),
  };
}

nonceStoreConformance("sqlite", async () => sqliteNonces(), {
  durable: true,
  injectedClock: true,
  capped: async () => ({ ...sqliteNonces({ maxBytes: 64 * 1024 }), lifetimeMs: 60_000 }),
});

serverJobConformance("sqlite", async () => {
  const path = file();
  return {
    jobStore: new SqliteJobStore(path),
    nonceStore: new SqliteNonceStore(path),
    jobQueue: (deps) => new ClaimingJobQueue({ ...deps, pollMs: 20 }),
  };
});

longPollConformance("sqlite", async () => {
  const path = file();
  return {
    jobStore: new SqliteJobStore(path),
    nonceStore: new SqliteNonceStore(path),
    jobQueue: (deps) => new ClaimingJobQueue({ ...deps, pollMs: 20 }),
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
