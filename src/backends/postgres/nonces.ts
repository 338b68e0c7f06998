import { type NonceStore, type NonceStoreStats, nonceDigest } from "../../jobs/nonces.js";
import { type PendingReservation, ReservationBatcher } from "../../jobs/reserve-batch.js";
import { NonceCount } from "../nonce-count.js";
import { DEFAULT_SCHEMA, type PostgresConnection, quoteIdent } from "./connection.js";

/** Options for {@link PostgresNonceStore}. */
export interface PostgresNonceStoreOptions {
  /** The schema the tables live in (see `migrate`). Default `smcp`. */
  schema?: string;
  /** Give up this store's hold on the connection at `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
  now?: () => number;
  /** How often expired pairs are looked for, ms. Default 1,000. */
  sweepEveryMs?: number;
  /** Expired pairs deleted per statement (the sweep goes on at once while batches come back full). Default 1,000. */
  sweepBatch?: number;
  /** How often the table's size (for `stats().bytes`) is read again, ms. Default 10,000. */
  sizeEveryMs?: number;
}

/** Reservations sent in one statement at most. */
const MAX_GROUP = 1024;

/**
 * Replay cache in PostgreSQL, shared by every replica. A row is a 16-byte
 * digest of the pair ({@link nonceDigest}) and its expiry; the digest is
 * the primary key, so of concurrent reservations of one pair, from any
 * processes, exactly one inserts it. Group commit: the reservations made in
 * one event-loop turn go in one `INSERT ... ON CONFLICT` statement (sorted
 * by digest, so two processes' batches never deadlock), and each `reserve`
 * resolves once it committed: a nonce is stored before the answer to its
 * request leaves. A pair whose time has passed but that the sweep has not
 * deleted yet is taken over in the same statement (`DO UPDATE ... WHERE
 * expired`), so it is free exactly from its expiry. Expired rows are
 * deleted in batches on a timer (`FOR UPDATE SKIP LOCKED`: processes
 * sweeping at once split the work), so the table stays the size of the
 * pairs a freshness window holds.
 *
 * Fail closed: with PostgreSQL down or refusing us, `reserve` rejects and
 * the server answers `unavailable`.
 */
export class PostgresNonceStore implements NonceStore {
  readonly #db: PostgresConnection;
  readonly #schema: string;
  readonly #insert: string;
  readonly #sweep: string;
  readonly #now: () => number;
  readonly #sweepEveryMs: number;
  readonly #sweepLimit: number;
  readonly #sizeEveryMs: number;
  readonly #closeConnection: boolean;
  readonly #count = new NonceCount();
  readonly #inFlight = new Set<Promise<void>>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #bytes: number | undefined;
  #sizeAt = 0;
  #closed = false;

  constructor(connection: PostgresConnection, options: PostgresNonceStoreOptions = {}) {
    this.#db = connection;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    const table = `${quoteIdent(this.#schema)}.nonces`;
    this.#insert = `INSERT INTO ${table} AS n (digest, expires_at)
      SELECT d, e FROM unnest($1::bytea[], $2::bigint[]) AS t(d, e) ORDER BY d
      ON CONFLICT (digest) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at <= $3
      RETURNING digest`;
    this.#sweep = `DELETE FROM ${table} WHERE digest IN
      (SELECT digest FROM ${table} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    const now = options.now ?? Date.now;
    // Whole ms, as the bigint column holds them: expiries are whole ms, so `expires_at <= now` reads the same floored.
    this.#now = () => Math.floor(now());
    this.#sweepEveryMs = options.sweepEveryMs ?? 1000;
    this.#sweepLimit = options.sweepBatch ?? 1000;
    this.#sizeEveryMs = options.sizeEveryMs ?? 10_000;
    this.#closeConnection = options.closeConnection ?? false;
    this.#scheduleSweep(this.#sweepEveryMs);
  }

  reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("the PostgreSQL replay cache is closed"));
    return this.#batcher.add(clientId, nonce, expiresAt);
  }

  /** Deletes the pairs expired by now, a batch at a time, until none is left; returns how many. */
  async sweep(): Promise<number> {
    let deleted = 0;
    for (;;) {
      const n = (await this.#db.pool.query(this.#sweep, [this.#now(), this.#sweepLimit])).rowCount ?? 0;
      deleted += n;
      if (n < this.#sweepLimit) return deleted;
    }
  }

  stats(): NonceStoreStats {
    return { held: this.#count.held(this.#now()), ...(this.#bytes === undefined ? {} : { bytes: this.#bytes }) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    // Reservations already made are committed (and answered) before the connection goes.
    this.#batcher.drain();
    await Promise.allSettled([...this.#inFlight]);
    await this.#sweeping;
    if (this.#closeConnection) await this.#db.close();
  }

  readonly #send = (batch: PendingReservation[]): void => {
    const sent = this.#commit(batch);
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  };
  readonly #batcher = new ReservationBatcher(this.#send, nonceDigest, MAX_GROUP);

  async #commit(batch: PendingReservation[]): Promise<void> {
    // One row per pair: a pair twice in a batch would make ON CONFLICT touch its row twice (an error). The
    // first reservation of a pair stands for the batch; the copies are replays whatever it gets.
    const first = new Map<string, PendingReservation>();
    for (const p of batch) {
      const hex = p.key.toString("hex");
      if (!first.has(hex)) first.set(hex, p);
    }
    const rows = [...first.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const now = this.#now();
    let won: Set<string>;
    try {
      const result = await this.#db.pool.query<{ digest: Buffer }>(this.#insert, [
        rows.map(([, p]) => p.key),
        rows.map(([, p]) => p.expiresAt),
        now,
      ]);
      won = new Set(result.rows.map((r) => r.digest.toString("hex")));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    for (const [hex, p] of rows) if (won.has(hex)) this.#count.add(p.expiresAt, now);
    for (const p of batch) {
      const hex = p.key.toString("hex");
      p.resolve(first.get(hex) === p && won.has(hex));
    }
  }

  #scheduleSweep(ms: number): void {
    if (this.#closed) return;
    this.#sweepTimer = setTimeout(this.#sweepTick, ms);
    this.#sweepTimer.unref();
  }

  readonly #sweepTick = (): void => {
    if (this.#closed) return;
    this.#sweeping = (async () => {
      let full = false;
      try {
        const n = (await this.#db.pool.query(this.#sweep, [this.#now(), this.#sweepLimit])).rowCount ?? 0;
        full = n === this.#sweepLimit;
        if (Date.now() - this.#sizeAt >= this.#sizeEveryMs) {
          this.#sizeAt = Date.now();
          const size = await this.#db.pool.query<{ bytes: number }>("SELECT pg_total_relation_size($1::regclass) AS bytes", [
            `${quoteIdent(this.#schema)}.nonces`,
          ]);
          this.#bytes = size.rows[0]?.bytes;
        }
      } catch {
        // Unreachable: the next tick tries again (reservations meanwhile fail closed on their own).
      }
      // A full batch: more are due; go on at once.
      this.#scheduleSweep(full ? 0 : this.#sweepEveryMs);
    })();
  };
}
