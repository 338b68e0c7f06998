import type { Database, Statement, Transaction } from "better-sqlite3";
import { type NonceStore, type NonceStoreStats, nonceDigest, sha256 } from "../../jobs/nonces.js";
import { type PendingReservation, ReservationBatcher } from "../../jobs/reserve-batch.js";
import { SmcpError, SmcpUsageError } from "../../protocol/errors.js";
import { NonceCount } from "../nonce-count.js";
import { openSqlite } from "./connection.js";
import { type Maintenance, startMaintenance } from "./maintenance.js";

/** Options for {@link SqliteNonceStore}. */
export interface SqliteNonceStoreOptions {
  now?: () => number;
  /** How often expired pairs are looked for, in ms. Default 1,000. */
  sweepEveryMs?: number;
  /** Expired pairs deleted per transaction (the sweep yields between them). Default 100. */
  sweepBatch?: number;
  /**
   * The sweep and WAL checkpoints run in a thread of the store's own, off
   * the event loop (see `startMaintenance`). False: on this
   * connection, the sweep a batch at a time between requests and SQLite's
   * own checkpoints inside commits. Default true (false for `:memory:`).
   */
  maintenanceThread?: boolean;
  /** With the maintenance thread: how often it checkpoints the WAL, ms. Default 1,000. */
  checkpointEveryMs?: number;
  /**
   * Cap on the file's size in bytes (SQLite's `max_page_count`, for this
   * connection's writes). At it, new requests fail closed with
   * `unavailable` until the sweep frees pages. Default: none (the disk).
   */
  maxBytes?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS smcp_nonce_digests (digest BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS smcp_nonce_digests_expiry ON smcp_nonce_digests (expires_at);
`;

/** Deletes expired rows, oldest first: (time, most rows). */
const SWEEP = `DELETE FROM smcp_nonce_digests WHERE digest IN
  (SELECT digest FROM smcp_nonce_digests WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`;

/** Reservations committed in one transaction at most (bounds how long one commit holds the event loop). */
const MAX_GROUP = 1024;
/** WAL frames (pages) past which the store forces the WAL to start over: 65,536 × 4 KiB = 256 MiB. */
const MAX_WAL_FRAMES = 65_536;

/**
 * Replay cache in a SQLite file, shared by the processes of one host (WAL)
 * and kept across restarts.
 *
 * A row is a 16-byte digest of the pair (`nonceDigest`) and its
 * expiry, in a `WITHOUT ROWID` table keyed by the digest, with an index on
 * the expiry for the sweep. Group commit: the reservations made in one
 * event-loop turn are written in one `BEGIN IMMEDIATE` transaction, one
 * `INSERT ... ON CONFLICT` each (atomic across processes; a pair whose time
 * has passed is taken over in the same statement), and each `reserve`
 * resolves only after that transaction commits: a nonce is stored before
 * the answer to its request leaves. Off the event loop, in a thread of the
 * store's own (see `startMaintenance`): the sweep deletes expired rows
 * in bounded batches in order of expiry, and checkpoints copy the WAL back
 * into the file.
 */
export class SqliteNonceStore implements NonceStore {
  readonly #db: Database;
  readonly #commit: Transaction<(batch: PendingReservation[], now: number) => boolean[]>;
  readonly #sweepBatch: Statement;
  readonly #now: () => number;
  readonly #sweepEveryMs: number;
  readonly #sweepLimit: number;
  readonly #maxBytes: number | undefined;
  readonly #count = new NonceCount();
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweepNext: NodeJS.Immediate | undefined;
  #maintenance: Maintenance | undefined;
  #closed = false;

  constructor(path: string, options: SqliteNonceStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#sweepEveryMs = options.sweepEveryMs ?? 1000;
    this.#sweepLimit = options.sweepBatch ?? 100;
    this.#maxBytes = options.maxBytes;
    if (this.#maxBytes !== undefined && !(this.#maxBytes > 0)) throw new SmcpUsageError("maxBytes must be positive");
    this.#db = openSqlite(path, { synchronous: "NORMAL" });
    this.#db.exec(SCHEMA);
    this.#migrate();
    if (this.#maxBytes !== undefined) {
      const pageSize = Number(this.#db.pragma("page_size", { simple: true }));
      this.#db.pragma(`max_page_count = ${Math.max(1, Math.floor(this.#maxBytes / pageSize))}`);
    }
    const insert = this.#db.prepare(`INSERT INTO smcp_nonce_digests (digest, expires_at) VALUES (?, ?)
      ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE smcp_nonce_digests.expires_at <= ?`);
    this.#commit = this.#db.transaction((batch: PendingReservation[], now: number) =>
      batch.map((p) => insert.run(p.key, p.expiresAt, now).changes === 1),
    );
    this.#sweepBatch = this.#db.prepare(SWEEP);
    if ((options.maintenanceThread ?? true) && path !== ":memory:" && path !== "") {
      this.#db.pragma("wal_autocheckpoint = 0");
      // When the WAL starts over, a file grown past 64 MiB in a burst is cut back.
      this.#db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
      this.#maintenance = startMaintenance(path, {
        checkpointEveryMs: options.checkpointEveryMs ?? 1000,
        sweepSql: SWEEP,
        sweepBatch: this.#sweepLimit,
        onCheckpoint: ({ log }) => this.#finishCheckpoint(log),
        // Without the thread, this connection's commits checkpoint again (the WAL stays bounded) and the sweep runs here.
        onError: () => {
          if (this.#db.open) this.#db.pragma("wal_autocheckpoint = 1000");
        },
      });
    }
    this.#scheduleSweep(this.#sweepEveryMs);
  }

  reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("the SQLite replay cache is closed"));
    return this.#batcher.add(clientId, nonce, expiresAt);
  }

  /**
   * Deletes expired rows now, a batch (`sweepBatch` rows) at a time, until
   * none is left or `maxBatches` ran (the background sweep runs one batch a
   * turn). Returns how many were deleted.
   */
  sweep(maxBatches = Number.POSITIVE_INFINITY): number {
    let deleted = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const n = this.#sweepBatch.run(this.#now(), this.#sweepLimit).changes;
      deleted += n;
      if (n < this.#sweepLimit) break;
    }
    return deleted;
  }

  stats(): NonceStoreStats {
    const pageSize = Number(this.#db.pragma("page_size", { simple: true }));
    const pages = Number(this.#db.pragma("page_count", { simple: true }));
    const free = Number(this.#db.pragma("freelist_count", { simple: true }));
    return {
      held: this.#count.held(this.#now()),
      bytes: (pages - free) * pageSize,
      ...(this.#maxBytes === undefined ? {} : { capacityBytes: this.#maxBytes }),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    clearImmediate(this.#sweepNext);
    // Reservations already made are committed (and answered) before the file closes.
    this.#batcher.drain();
    await this.#maintenance?.stop();
    if (this.#db.open) this.#db.close();
  }

  readonly #send = (batch: PendingReservation[]): void => {
    const now = this.#now();
    let results: boolean[];
    try {
      results = this.#commit.immediate(batch, now);
    } catch (error) {
      const failure = isFull(error) ? new SmcpError("unavailable", "the replay cache is full; retry later") : error;
      for (const p of batch) p.reject(failure);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as PendingReservation;
      if (results[i]) this.#count.add(p.expiresAt, now);
      p.resolve(results[i] === true);
    }
  };
  readonly #batcher = new ReservationBatcher(this.#send, nonceDigest, MAX_GROUP);

  /**
   * The checkpoint thread copied the bulk of the WAL; the frames committed
   * meanwhile are copied here, between commits, so the next commit starts
   * the WAL over (a checkpoint racing commits never completes, and the WAL
   * would only grow). Past `MAX_WAL_FRAMES` (other processes' commits kept
   * racing it), a RESTART checkpoint waits for them, so the WAL stays bounded.
   */
  #finishCheckpoint(log: number): void {
    if (this.#closed || log === 0) return;
    const restart = log > MAX_WAL_FRAMES;
    // RESTART waits for other processes' transactions: briefly, then the next round tries again.
    if (restart) this.#db.pragma("busy_timeout = 100");
    try {
      this.#db.pragma(restart ? "wal_checkpoint(RESTART)" : "wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or failing: the next round tries again; a failing file fails the commits, which answer unavailable.
    } finally {
      if (restart && this.#db.open) this.#db.pragma("busy_timeout = 5000");
    }
  }

  #scheduleSweep(ms: number): void {
    if (this.#closed) return;
    // More due at once: next turn, after the requests waiting now. Otherwise on the timer.
    if (ms === 0) this.#sweepNext = setImmediate(this.#sweepTick).unref();
    else this.#sweepTimer = setTimeout(this.#sweepTick, ms).unref();
  }

  readonly #sweepTick = (): void => {
    if (this.#closed) return;
    if (this.#maintenance?.running) {
      this.#maintenance.sweep(this.#now());
      this.#scheduleSweep(this.#sweepEveryMs);
      return;
    }
    let deleted = 0;
    // Never wait for the write lock here: another process holds it for a commit; the next tick tries again.
    this.#db.pragma("busy_timeout = 0");
    try {
      deleted = this.#sweepBatch.run(this.#now(), this.#sweepLimit).changes;
    } catch {
      deleted = 0;
    } finally {
      if (this.#db.open) this.#db.pragma("busy_timeout = 5000");
    }
    // A full batch: more are due; go on after the requests waiting now.
    this.#scheduleSweep(deleted === this.#sweepLimit ? 0 : this.#sweepEveryMs);
  };

  /** Moves live pairs from the table of earlier versions (text keys) to digests, once. */
  #migrate(): void {
    const old = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'smcp_nonces'").get();
    if (!old) return;
    this.#db.function("smcp_nonce_digest", { deterministic: true }, (key) => sha256(String(key)).subarray(0, 16));
    this.#db
      .transaction(() => {
        if (!this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'smcp_nonces'").get()) return;
        this.#db
          .prepare(`INSERT INTO smcp_nonce_digests (digest, expires_at)
            SELECT smcp_nonce_digest(key), expires_at FROM smcp_nonces WHERE expires_at > ?
            ON CONFLICT (digest) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`)
          .run(this.#now());
        this.#db.exec("DROP TABLE smcp_nonces");
      })
      .immediate();
  }
}

function isFull(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "SQLITE_FULL";
}
