/**
 * Waiters for job changes, by job id: a store notifies an id after each of
 * its writes, and `wait` settles at the next notification (or an abort).
 * Shared by every store's `watch`.
 */
export class JobWatchers {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves at the next {@link notify} of `id`, or when `signal` aborts. Never rejects. */
  wait(id: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let set = this.#waiting.get(id);
      if (!set) {
        set = new Set();
        this.#waiting.set(id, set);
      }
      const waiters = set;
      const done = () => {
        signal.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiting.get(id) === waiters) this.#waiting.delete(id);
        resolve();
      };
      waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Wakes every waiter of `id`. */
  notify(id: string): void {
    const set = this.#waiting.get(id);
    if (!set) return;
    for (const done of [...set]) done();
  }

  /** The ids someone waits on. */
  ids(): string[] {
    return [...this.#waiting.keys()];
  }

  /** How many ids are waited on. */
  get size(): number {
    return this.#waiting.size;
  }
}
