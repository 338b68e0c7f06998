import type { Database, Statement } from "better-sqlite3";
import { openSqlite } from "../sqlite.js";
import { type NonceStore, nonceKey } from "./store.js";

/** Options for {@link SqliteNonceStore}. */
export interface SqliteNonceStoreOptions {
  now?: () => number;
  /** How often expired pairs are deleted, in ms. Default 10,000. */
  sweepEveryMs?: number;
}

/**
 * Replay cache in a SQLite file, shared by the processes of one host and
 * kept across restarts. One `INSERT ... ON CONFLICT` per request: atomic,
 * and a pair whose time has passed is taken over in the same statement.
 */
export class SqliteNonceStore implements NonceStore {
  readonly #db: Database;
  readonly #reserve: Statement;
  readonly #sweep: Statement;
  readonly #now: () => number;
  readonly #sweepEveryMs: number;
  #nextSweep = 0;

  constructor(path: string, options: SqliteNonceStoreOptions = {}) {
    this.#db = openSqlite(path, { synchronous: "NORMAL" });
    this.#db.exec("CREATE TABLE IF NOT EXISTS smcp_nonces (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID");
    this.#reserve = this.#db.prepare(`INSERT INTO smcp_nonces (key, expires_at) VALUES (@key, @expiresAt)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE smcp_nonces.expires_at <= @now`);
    this.#sweep = this.#db.prepare("DELETE FROM smcp_nonces WHERE expires_at <= @now");
    this.#now = options.now ?? Date.now;
    this.#sweepEveryMs = options.sweepEveryMs ?? 10_000;
  }

  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const now = this.#now();
    if (now >= this.#nextSweep) {
      this.#nextSweep = now + this.#sweepEveryMs;
      this.#sweep.run({ now });
    }
    return this.#reserve.run({ key: nonceKey(clientId, nonce), expiresAt, now }).changes === 1;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
