import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteWriteBatch } from "../src/backends/sqlite/write-batch.js";
import { type ClaimingJobQueue, createJobEngine, demoTools, MemoryJobStore, ToolRegistry } from "../src/index.js";
import { SqliteJobStore } from "../src/sqlite.js";
import { until } from "./helpers.js";

// Group commit of the SQLite job store (src/backends/sqlite/write-batch.ts): the writes of one
// event-loop turn share one transaction, each in its own savepoint.

const dir = mkdtempSync(join(tmpdir(), "smcp-sqlite-batch-"));
let n = 0;
const file = () => join(dir, `db-${n++}.sqlite`);
const opened: { close(): unknown }[] = [];
after(async () => {
  for (const o of opened.reverse()) await o.close();
});

/** A connection whose COMMITs are counted (better-sqlite3's `verbose` sees every statement run). */
function counted(path: string) {
  const seen = { commits: 0 };
  const db = new Database(path, {
    verbose: (sql) => {
      if (String(sql) === "COMMIT") seen.commits++;
    },
  });
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
  opened.push(db);
  return { db, seen, insert: db.prepare("INSERT INTO t (k, v) VALUES (?, ?)") };
}
const count = (db: Database.Database) => Number(db.prepare("SELECT count(*) FROM t").pluck().get());

describe("SQLite group commit (SqliteWriteBatch)", () => {
  it("the writes of one turn are one COMMIT, and none is answered before it; later turns commit on their own", async () => {
    const { db, seen, insert } = counted(file());
    const batch = new SqliteWriteBatch(db);
    const reader = new Database(db.name, { readonly: true });
    opened.push(reader);
    const rows = () => Number(reader.prepare("SELECT count(*) FROM t").pluck().get());
    const seenAtFirstAnswer: number[] = [];
    const writes = Array.from({ length: 100 }, (_, i) =>
      batch
        .run(() => insert.run(`k${i}`, i).changes)
        .then((changes) => {
          if (seenAtFirstAnswer.length === 0) seenAtFirstAnswer.push(rows());
          return changes;
        }),
    );
    assert.equal(rows(), 0, "nothing is written before the turn ends");
    assert.deepEqual(await Promise.all(writes), Array(100).fill(1));
    assert.equal(seen.commits, 1);
    assert.deepEqual(seenAtFirstAnswer, [100], "the first answer comes after all 100 were committed");
    await batch.run(() => insert.run("a", 1));
    await batch.run(() => insert.run("b", 2));
    assert.equal(seen.commits, 3);
  });

  it("a write that throws rolls back alone (its own savepoint) and rejects only its caller", async () => {
    const { db, insert } = counted(file());
    const batch = new SqliteWriteBatch(db);
    const outcomes = await Promise.allSettled([
      batch.run(() => insert.run("x", 1)),
      batch.run(() => {
        insert.run("half", 1); // written, then undone with the savepoint
        insert.run("x", 2); // primary key taken: throws
      }),
      batch.run(() => {
        throw new Error("refused by the write itself");
      }),
      batch.run(() => insert.run("y", 3)),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["fulfilled", "rejected", "rejected", "fulfilled"],
    );
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /UNIQUE constraint failed/);
    assert.equal((outcomes[2] as PromiseRejectedResult).reason.message, "refused by the write itself");
    assert.deepEqual(db.prepare("SELECT k FROM t ORDER BY k").pluck().all(), ["x", "y"]);
  });

  it("a commit that cannot happen (another connection holds the write lock past the timeout) rejects every write of the batch and keeps none", async () => {
    const { db, insert } = counted(file());
    db.pragma("busy_timeout = 50");
    const batch = new SqliteWriteBatch(db);
    const other = new Database(db.name);
    opened.push(other);
    other.exec("BEGIN IMMEDIATE");
    const outcomes = await Promise.allSettled([batch.run(() => insert.run("a", 1)), batch.run(() => insert.run("b", 2))]);
    other.exec("ROLLBACK");
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["rejected", "rejected"],
    );
    assert.match(String((outcomes[0] as PromiseRejectedResult).reason), /database is locked|SQLITE_BUSY/);
    assert.equal(count(db), 0);
    assert.equal((await batch.run(() => insert.run("c", 3))).changes, 1, "the next turn commits again");
  });

  it("a failure that ends the whole transaction (a full file) rejects every write of the batch and keeps none: none commits on its own after it", async () => {
    const { db, insert } = counted(file());
    db.pragma(`max_page_count = ${Number(db.pragma("page_count", { simple: true })) + 3}`);
    const batch = new SqliteWriteBatch(db);
    const big = db.prepare("INSERT INTO t (k, v) VALUES (?, zeroblob(200000))");
    const outcomes = await Promise.allSettled([
      batch.run(() => insert.run("a", 1)),
      batch.run(() => big.run("big")),
      batch.run(() => insert.run("c", 3)),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["rejected", "rejected", "rejected"],
    );
    assert.equal((outcomes[2] as PromiseRejectedResult).reason.code, "SQLITE_FULL");
    assert.equal(db.inTransaction, false);
    assert.equal(count(db), 0);
  });

  it("batches of more than maxGroup writes go in several commits, in order", async () => {
    const { db, seen, insert } = counted(file());
    const batch = new SqliteWriteBatch(db, 10);
    const writes = Array.from({ length: 25 }, (_, i) => batch.run(() => insert.run(`k${String(i).padStart(2, "0")}`, i)));
    await Promise.all(writes);
    assert.equal(seen.commits, 3);
    assert.deepEqual(
      db.prepare("SELECT v FROM t ORDER BY rowid").pluck().all(),
      Array.from({ length: 25 }, (_, i) => i),
    );
  });

  it("the job store: one turn's creates are written together at its end; a quota refusal among them stores nothing of its job while the others commit, and close() commits what it already took", async () => {
    const path = file();
    const store = new SqliteJobStore(path);
    const job = (clientId: string) => ({
      id: randomUUID(),
      clientId,
      tool: "start_long_task",
      args: { seconds: 1 },
      maxOpenJobs: 2,
    });
    const reader = new Database(path, { readonly: true });
    opened.push(reader);
    const creates = [store.create(job("a")), store.create(job("a")), store.create(job("a")), store.create(job("b"))];
    assert.equal(reader.prepare("SELECT count(*) FROM smcp_jobs").pluck().get(), 0, "nothing is written before the turn ends");
    const outcomes = await Promise.allSettled(creates);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["fulfilled", "fulfilled", "rejected", "fulfilled"],
    );
    assert.equal((outcomes[2] as PromiseRejectedResult).reason.code, "rate_limited");
    assert.equal((await store.usage("a")).open, 2);
    const late = store.create(job("b"));
    await store.close();
    const { job: stored } = await late;
    const reopened = new SqliteJobStore(path);
    opened.push(reopened);
    assert.equal((await reopened.get(stored.id))?.state, "queued");
    assert.equal((await reopened.list()).length, 4);
  });

  it("a backlog is claimed in doubling rounds (1, 2, 4, 8, then the free slots), one round asked in one turn (so one commit); an empty queue costs one claim per wake", async () => {
    const path = file();
    const store = new SqliteJobStore(path);
    opened.push(store);
    for (let i = 0; i < 40; i++) {
      await store.create({ id: randomUUID(), clientId: `c${i % 4}`, tool: "start_long_task", args: { seconds: 20 } });
    }
    // The claims asked in one synchronous run (before any microtask) are one round.
    const rounds: number[] = [];
    let inRound = false;
    const claim = store.claim.bind(store);
    store.claim = (...args) => {
      if (!inRound) {
        inRound = true;
        rounds.push(0);
        queueMicrotask(() => {
          inRound = false;
        });
      }
      rounds[rounds.length - 1] = (rounds.at(-1) as number) + 1;
      return claim(...args);
    };
    const server = { id: "t", fingerprint: "t", capabilities: {} };
    const engine = createJobEngine({ store, tools: new ToolRegistry(demoTools), server, concurrency: 20, sweepEveryMs: 0 });
    opened.unshift(engine);
    await until(async () => (await store.counts()).running === 20);
    assert.deepEqual(rounds, [1, 2, 4, 8, 5]);
    assert.equal((await store.counts()).queued, 20);

    const empty = new SqliteJobStore(file());
    opened.push(empty);
    const emptyRounds: number[] = [];
    const emptyClaim = empty.claim.bind(empty);
    empty.claim = async (...args) => {
      const job = await emptyClaim(...args);
      emptyRounds.push(job ? 1 : 0);
      return job;
    };
    const idle = createJobEngine({ store: empty, tools: new ToolRegistry(demoTools), server, concurrency: 20, sweepEveryMs: 0 });
    opened.unshift(idle);
    await until(async () => emptyRounds.length === 1);
    (idle.queue as ClaimingJobQueue).wake();
    await until(async () => emptyRounds.length === 2);
    assert.deepEqual(emptyRounds, [0, 0], "one claim per wake, none found");
  });

  it("a round where one claim fails still runs the jobs its other claims took, then reports the failure and claims again", async () => {
    const store = new MemoryJobStore();
    for (let i = 0; i < 6; i++) {
      await store.create({ id: randomUUID(), clientId: "c", tool: "start_long_task", args: { seconds: 20 } });
    }
    let calls = 0;
    const claim = store.claim.bind(store);
    store.claim = (...args) => (++calls === 2 ? Promise.reject(new Error("store hiccup")) : claim(...args));
    const errors: unknown[] = [];
    const started: string[] = [];
    const server = { id: "t", fingerprint: "t", capabilities: {} };
    const engine = createJobEngine({
      store,
      tools: new ToolRegistry(demoTools),
      server,
      concurrency: 10,
      sweepEveryMs: 0,
      onError: (error) => errors.push(error),
      onJob: (event) => {
        if (event.event === "started") started.push(event.jobId);
      },
    });
    opened.unshift(engine);
    // Rounds: 1 (found), then 2, whose first claim fails: the second's job still runs, the error is reported.
    await until(async () => errors.length === 1 && started.length === 2);
    assert.equal((await store.counts()).running, 2);
    assert.deepEqual(new Set(started), new Set((await store.list({ state: "running" })).map((job) => job.id)));
    // The next wake claims the rest.
    (engine.queue as ClaimingJobQueue).wake();
    await until(async () => (await store.counts()).running === 6 && started.length === 6);
    assert.equal((await store.counts()).queued, 0);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ["store hiccup"],
    );
  });
});
