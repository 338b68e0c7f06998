import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { nonceKey } from "../src/jobs/nonces.js";
import { SqliteNonceStore } from "../src/sqlite.js";
import { until } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "smcp-replay-sqlite-"));
let n = 0;
const file = () => join(dir, `db-${n++}.sqlite`);
const stores: SqliteNonceStore[] = [];
const readers: Database.Database[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const r of readers) r.close();
});
const open = (path: string, options: ConstructorParameters<typeof SqliteNonceStore>[1] = {}) => {
  const store = new SqliteNonceStore(path, options);
  stores.push(store);
  return store;
};
/** A connection of the test's own, as another process would have. */
const reader = (path: string) => {
  const db = new Database(path, { readonly: true });
  readers.push(db);
  return db;
};
const rows = (db: Database.Database) => Number(db.prepare("SELECT count(*) FROM smcp_nonce_digests").pluck().get());

describe("SQLite replay cache", () => {
  it("group commit: the reservations of one turn are one transaction, committed before any of them is answered", async () => {
    const path = file();
    const store = open(path);
    const db = reader(path);
    const before = rows(db);
    const seenAtFirstAnswer: number[] = [];
    const answers = Array.from({ length: 1000 }, (_, i) =>
      store.reserve("c1", `n-${i}`, Date.now() + 60_000).then((won) => {
        if (seenAtFirstAnswer.length === 0) seenAtFirstAnswer.push(rows(db));
        return won;
      }),
    );
    assert.equal(rows(db), before, "nothing is written before the turn ends");
    assert.ok((await Promise.all(answers)).every(Boolean));
    assert.deepEqual(seenAtFirstAnswer, [before + 1000], "the first answer comes after all 1000 were committed");
  });

  it("a row is a 16-byte digest and an integer expiry: neither the client id nor the nonce is stored", async () => {
    const path = file();
    const store = open(path);
    await store.reserve("client-with-a-long-name", "nonce-secretive-123", 1_900_000_000_123);
    const row = reader(path).prepare("SELECT digest, expires_at FROM smcp_nonce_digests").get() as {
      digest: Buffer;
      expires_at: number;
    };
    assert.equal(row.digest.length, 16);
    assert.equal(row.expires_at, 1_900_000_000_123);
    assert.ok(!row.digest.toString("latin1").includes("client"));
  });

  it("moves the live pairs of the earlier text-keyed table over, so a replay across the upgrade is still refused", async () => {
    const path = file();
    const old = new Database(path);
    old.exec("CREATE TABLE smcp_nonces (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID");
    const insert = old.prepare("INSERT INTO smcp_nonces VALUES (?, ?)");
    insert.run(nonceKey("c1", "live"), Date.now() + 60_000);
    insert.run(nonceKey("c1", "gone"), Date.now() - 1);
    old.close();
    const store = open(path);
    assert.equal(await store.reserve("c1", "live", Date.now() + 60_000), false);
    assert.equal(await store.reserve("c1", "gone", Date.now() + 60_000), true);
    const tables = reader(path).prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    assert.ok(!tables.includes("smcp_nonces"), "the old table is dropped");
  });

  for (const maintenanceThread of [true, false]) {
    it(`the background sweep (${maintenanceThread ? "in the maintenance thread" : "on the store's connection"}) deletes expired rows in bounded batches, oldest first, and keeps live ones`, async () => {
      const path = file();
      let time = Date.now();
      const store = open(path, { now: () => time, sweepEveryMs: 20, sweepBatch: 100, maintenanceThread });
      const db = reader(path);
      await Promise.all(Array.from({ length: 1000 }, (_, i) => store.reserve("c1", `n-${i}`, time + 1 + i)));
      time += 700; // rows 0..699 have expired
      await until(() => rows(db) === 300, 10_000, "the sweep");
      const oldest = Number(db.prepare("SELECT min(expires_at) FROM smcp_nonce_digests").pluck().get());
      assert.ok(oldest > time, "every row left is live");
      for (let i = 690; i < 710; i++) assert.equal(await store.reserve("c1", `n-${i}`, time + 60_000), i < 700);
    });
  }

  it("checkpoints run in a thread, and the WAL starts over under a steady stream of commits (it stays bounded)", async () => {
    const path = file();
    const store = open(path, { checkpointEveryMs: 20 });
    const size = (suffix: string) => {
      try {
        return statSync(path + suffix).size;
      } catch {
        return 0;
      }
    };
    const dbBefore = size("");
    // Groups of random keys committed back to back, so a checkpoint always races a commit.
    let writing = true;
    let groups = 0;
    const writer = (async () => {
      while (writing) {
        await Promise.all(Array.from({ length: 100 }, () => store.reserve("c1", randomUUID(), Date.now() + 60_000)));
        groups++;
      }
    })();
    // A WAL that never started over would grow with every group; one that does stops growing for a while.
    let wal = size("-wal");
    let seenAt = groups;
    try {
      await until(
        () => {
          const now = size("-wal");
          if (now !== wal || groups < seenAt + 3) {
            if (now !== wal) [wal, seenAt] = [now, groups];
            return false;
          }
          return true;
        },
        30_000,
        "the WAL to start over",
      );
    } finally {
      writing = false;
      await writer;
    }
    assert.ok(size("") > dbBefore, "pages reached the database file");
  });

  it("a store left open does not keep the process alive (its checkpoint thread is unref'd)", async () => {
    const script = fileURLToPath(new URL("./fixtures/sqlite-nonces-left-open.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", script, file()], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, signal] = await once(child, "exit");
    clearTimeout(timer);
    assert.deepEqual([code, signal, out.trim()], [0, null, "true"]);
  });

  it("close() commits the reservations already made before the file closes", async () => {
    const path = file();
    const store = new SqliteNonceStore(path);
    const pending = store.reserve("c1", "n", Date.now() + 60_000);
    await store.close();
    assert.equal(await pending, true);
    await assert.rejects(store.reserve("c1", "m", Date.now() + 60_000), /closed/);
    assert.equal(await open(path).reserve("c1", "n", Date.now() + 60_000), false);
  });

  it("stats: the file's bytes in use, and the cap when one is set", async () => {
    const path = file();
    const store = open(path, { maxBytes: 1 << 20 });
    const empty = store.stats();
    await Promise.all(Array.from({ length: 2000 }, () => store.reserve("c1", randomUUID(), Date.now() + 60_000)));
    const full = store.stats();
    assert.equal(full.held, 2000);
    assert.equal(full.capacityBytes, 1 << 20);
    assert.ok((full.bytes ?? 0) > (empty.bytes ?? 0));
  });
});
