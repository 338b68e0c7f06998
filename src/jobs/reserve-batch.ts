import { SmcpUsageError } from "../protocol/errors.js";

/** One reservation waiting for its batch: the store's key for the pair, its expiry (whole ms) and how to answer it. */
export interface PendingReservation<K = Buffer> {
  key: K;
  expiresAt: number;
  resolve(fresh: boolean): void;
  reject(error: unknown): void;
}

/**
 * Gathers the reservations of one event-loop turn into batches of at most
 * `maxGroup` for a shared replay cache (SQLite, PostgreSQL, Redis): every
 * request read in one turn joins one statement, transaction or script call,
 * so a store round trip is paid per turn, not per request. `keyOf` gives the
 * store's key for a pair (computed when the reservation is queued); `commit`
 * answers every reservation of the batch it is given.
 */
export class ReservationBatcher<K = Buffer> {
  readonly #commit: (batch: PendingReservation<K>[]) => void;
  readonly #keyOf: (clientId: string, nonce: string) => K;
  readonly #maxGroup: number;
  #pending: PendingReservation<K>[] = [];
  #scheduled = false;

  constructor(commit: (batch: PendingReservation<K>[]) => void, keyOf: (clientId: string, nonce: string) => K, maxGroup = 1024) {
    this.#commit = commit;
    this.#keyOf = keyOf;
    this.#maxGroup = maxGroup;
  }

  /** Queues a reservation of (client, nonce) until `expiresAt`; resolves true when the pair was fresh. */
  add(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (!Number.isFinite(expiresAt)) return Promise.reject(new SmcpUsageError("expiresAt must be a finite time in ms"));
    return new Promise((resolve, reject) => {
      // Rounded up: held a fraction of a ms longer, never shorter.
      this.#pending.push({ key: this.#keyOf(clientId, nonce), expiresAt: Math.ceil(expiresAt), resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After this turn's I/O callbacks: every request read in this turn joins the same batch.
        setImmediate(this.#flush);
      }
    });
  }

  /** Commits every waiting reservation now (a store closing answers what it already took). */
  drain(): void {
    while (this.#pending.length > 0) this.#flush();
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const batch = this.#pending.length > this.#maxGroup ? this.#pending.splice(0, this.#maxGroup) : this.#pending;
    if (batch === this.#pending) this.#pending = [];
    if (this.#pending.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    if (batch.length > 0) this.#commit(batch);
  };
}
