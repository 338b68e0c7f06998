/**
 * Counts one process's reservations until they expire, by the second they
 * expire in: what a shared replay cache (SQLite, Redis) can report as
 * `held` without reading the store. A few hundred counters at most (the
 * longest lifetime in seconds), pruned once a second.
 */
export class NonceCount {
  readonly #bySecond = new Map<number, number>();
  #held = 0;
  #nextPrune = 0;

  /** Counts a reservation held until `expiresAt`. */
  add(expiresAt: number, now: number): void {
    // Counted until the end of its second: at most a second late.
    const second = Math.ceil(expiresAt / 1000);
    this.#bySecond.set(second, (this.#bySecond.get(second) ?? 0) + 1);
    this.#held++;
    if (now >= this.#nextPrune) this.#prune(now);
  }

  /** Reservations not yet expired at `now`. */
  held(now: number): number {
    this.#prune(now);
    return this.#held;
  }

  #prune(now: number): void {
    this.#nextPrune = now + 1000;
    for (const [second, count] of this.#bySecond) {
      if (second * 1000 > now) continue;
      this.#bySecond.delete(second);
      this.#held -= count;
    }
  }
}
