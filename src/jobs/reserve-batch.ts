import { SmcpUsageError } from "../protocol/errors.js";
import { nonceDigest } from "./nonces.js";

/** One reservation waiting for its batch: the pair's digest, its expiry (whole ms) and how to answer it. */
export interface PendingReservation {
  digest: Buffer;
  expiresAt: number;
  resolve(fresh: boolean): void;
  reject(error: unknown): void;
}

/**
 * Gathers the reservations of one event-loop turn into batches of at most
 * `maxGroup` for a SQL replay cache (SQLite, PostgreSQL): every request read
 * in one turn joins one statement or transaction, so a store round trip is
 * paid per turn, not per request. `commit` answers every reservation of the
 * batch it is given.
 */
export class ReservationBatcher {
  readonly #commit: (batch: PendingReservation[]) => void;
  readonly #maxGroup: number;
  #pending: PendingReservation[] = [];
  #scheduled = false;

  constructor(commit: (batch: PendingReservation[]) => void, maxGroup = 1024) {
    this.#commit = commit;
    this.#maxGroup = maxGroup;
  }

  /** Queues a reservation of (client, nonce) until `expiresAt`; resolves true when the pair was fresh. */
  add(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (!Number.isFinite(expiresAt)) return Promise.reject(new SmcpUsageError("expiresAt must be a finite time in ms"));
    return new Promise((resolve, reject) => {
      // Rounded up: held a fraction of a ms longer, never shorter.
      this.#pending.push({ digest: nonceDigest(clientId, nonce), expiresAt: Math.ceil(expiresAt), resolve, reject });
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
