import { SmcpUsageError } from "../protocol/errors.js";

/** One reservation waiting for its batch: the store's key for the pair, its expiry (whole ms) and how to answer it. */
export interface PendingReservation<K = Buffer> {
  key: K;
  expiresAt: number;
  resolve(fresh: boolean): void;
  reject(error: unknown): void;
}

/**
 * Gathers what is asked for in one event-loop turn into batches of at most
 * `maxGroup`, handed to `commit` after the turn's I/O callbacks: every
 * request read in one turn joins one batch (a group commit, a script call).
 */
export class TurnBatcher<T> {
  readonly #commit: (batch: T[]) => void;
  readonly #maxGroup: number;
  #pending: T[] = [];
  #scheduled = false;

  constructor(commit: (batch: T[]) => void, maxGroup: number) {
    this.#commit = commit;
    this.#maxGroup = maxGroup;
  }

  /** Queues `item` for this turn's batch. */
  add(item: T): void {
    this.#pending.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // After this turn's I/O callbacks: every request read in this turn joins the same batch.
      setImmediate(this.#flush);
    }
  }

  /** Commits everything waiting now (a store closing answers what it already took). */
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

/**
 * Gathers the reservations of one event-loop turn into batches of at most
 * `maxGroup` for a shared replay cache (SQLite, PostgreSQL, Redis): every
 * request read in one turn joins one statement, transaction or script call,
 * so a store round trip is paid per turn, not per request. `keyOf` gives the
 * store's key for a pair (computed when the reservation is queued); `commit`
 * answers every reservation of the batch it is given.
 */
export class ReservationBatcher<K = Buffer> {
  readonly #turns: TurnBatcher<PendingReservation<K>>;
  readonly #keyOf: (clientId: string, nonce: string) => K;

  constructor(commit: (batch: PendingReservation<K>[]) => void, keyOf: (clientId: string, nonce: string) => K, maxGroup = 1024) {
    this.#turns = new TurnBatcher(commit, maxGroup);
    this.#keyOf = keyOf;
  }

  /** Queues a reservation of (client, nonce) until `expiresAt`; resolves true when the pair was fresh. */
  add(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (!Number.isFinite(expiresAt)) return Promise.reject(new SmcpUsageError("expiresAt must be a finite time in ms"));
    return new Promise((resolve, reject) => {
      // Rounded up: held a fraction of a ms longer, never shorter.
      this.#turns.add({ key: this.#keyOf(clientId, nonce), expiresAt: Math.ceil(expiresAt), resolve, reject });
    });
  }

  /** Commits every waiting reservation now (a store closing answers what it already took). */
  drain(): void {
    this.#turns.drain();
  }
}
