/** What an entry of a {@link LinkedList} carries: its neighbours while `linked`. */
export interface ListLinks<T> {
  prev: T | undefined;
  next: T | undefined;
  linked: boolean;
}

/**
 * A doubly linked list through its own entries: adding and removing allocate nothing and cost O(1). For
 * per-request bookkeeping on long-lived objects, where a Set that gains and loses an entry per request
 * reallocates its table in V8's old generation every few requests once the Set is old (garbage only a major GC
 * frees: BENCHMARKS, round 3 session 14). An entry is in one list at a time.
 */
export class LinkedList<T extends ListLinks<T>> {
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;

  /** The oldest entry; follow `next` from it (read `next` before removing the entry it belongs to). */
  get head(): T | undefined {
    return this.#head;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends `entry` (its links are overwritten). */
  push(entry: T): void {
    entry.prev = this.#tail;
    entry.next = undefined;
    entry.linked = true;
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    this.#size++;
  }

  /** Unlinks `entry`; nothing when it is not linked (removing twice is harmless). */
  remove(entry: T): void {
    if (!entry.linked) return;
    entry.linked = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.#tail = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
    this.#size--;
  }

  /** Unlinks every entry, oldest first, and returns them in that order. */
  drain(): T[] {
    const entries: T[] = [];
    for (let entry = this.#head; entry; ) {
      const next = entry.next;
      entry.linked = false;
      entry.prev = undefined;
      entry.next = undefined;
      entries.push(entry);
      entry = next;
    }
    this.#head = undefined;
    this.#tail = undefined;
    this.#size = 0;
    return entries;
  }
}
