import { SmcpError } from "../protocol/errors.js";
import { type NonceStore, nonceKey } from "./store.js";

/** Options for {@link MemoryNonceStore}. */
export interface MemoryNonceStoreOptions {
  /** Pairs kept at most; past it new requests fail closed (`unavailable`). Default 2,000,000. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * In-process replay cache: exact for one process, lost on restart. For
 * tests and single-process use. Pairs are also filed by the second they
 * expire in, so dropping expired pairs touches only those, not the whole
 * window's worth.
 */
export class MemoryNonceStore implements NonceStore {
  readonly #seen = new Map<string, number>();
  readonly #bySecond = new Map<number, string[]>();
  readonly #maxEntries: number;
  readonly #now: () => number;
  #nextSweep = 0;

  constructor(options: MemoryNonceStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 2_000_000;
    this.#now = options.now ?? Date.now;
  }

  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const now = this.#now();
    if (now >= this.#nextSweep) this.#sweep(now);
    const key = nonceKey(clientId, nonce);
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return false;
    if (this.#seen.size >= this.#maxEntries) this.#sweep(now);
    if (this.#seen.size >= this.#maxEntries) throw new SmcpError("unavailable", "the replay cache is full");
    this.#seen.set(key, expiresAt);
    const second = Math.ceil(expiresAt / 1000);
    const bucket = this.#bySecond.get(second);
    if (bucket) bucket.push(key);
    else this.#bySecond.set(second, [key]);
    return true;
  }

  /** How many pairs are held (for tests and metrics). */
  get size(): number {
    return this.#seen.size;
  }

  #sweep(now: number): void {
    this.#nextSweep = now + 1000;
    for (const [second, keys] of this.#bySecond) {
      if (second * 1000 > now) continue;
      for (const key of keys) {
        const until = this.#seen.get(key);
        if (until !== undefined && until <= now) this.#seen.delete(key);
      }
      this.#bySecond.delete(second);
    }
  }

  async close(): Promise<void> {
    this.#seen.clear();
    this.#bySecond.clear();
  }
}
