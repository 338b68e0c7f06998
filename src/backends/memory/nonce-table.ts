import { SmcpError, SmcpUsageError } from "../../protocol/errors.js";

/** Bytes per slot: a 64-bit digest (two 32-bit words) and a 16-bit expiry offset. */
export const SLOT_BYTES = 10;
/** A bucket grows past this load: linear probing stays short below it. */
const MAX_LOAD = 0.75;
/**
 * By default a full table of fewer slots than this is rehashed into twice the slots, at once (a few ms of the
 * event loop at most); a larger one is sealed and a new table of twice its slots takes the bucket's new entries,
 * since rehashing a table of 1.5 million entries stopped every request in flight for 137-166 ms
 * (`bench/nonce-growth.ts`).
 */
const SEAL_FROM_SLOTS = 65_536;
/** A new bucket is sized for the previous bucket's count at this load, so a steady rate never grows one. */
const PRESIZE_LOAD = 0.6;
const MIN_SLOTS = 1024;
/** Expiry offsets are 16-bit; a bucket longer than this stores them in coarser (rounded-up) units. */
const OFFSET_RANGE = 65_535;

/** Options for {@link NonceTable}. */
export interface NonceTableOptions {
  /** Width of a time bucket, ms (entries are filed by the bucket their expiry falls in). */
  bucketMs: number;
  /** Bytes the tables may use in all. */
  maxBytes: number;
  /** A full table of at least this many slots is sealed beside a new one, not rehashed. Default 65,536. */
  sealFromSlots?: number;
}

/**
 * One time bucket's table: open addressing (linear probing) in typed arrays. A bucket that outgrew a large
 * table has several, the newest last; only the newest takes new entries.
 */
interface Bucket {
  /** `floor(expiresAt / bucketMs)` of every entry. */
  readonly number: number;
  readonly start: number;
  readonly end: number;
  slots: number;
  count: number;
  /** `[lo, hi]` per slot; both zero is an empty slot. */
  keys: Uint32Array;
  /** Expiry minus `start`, in units of `unitMs` (rounded up). */
  offsets: Uint16Array;
}

/**
 * The memory replay cache's storage: 64-bit digests in time buckets of
 * typed arrays, so a held pair costs no JS object and the garbage collector
 * never walks the cache. A bucket holds the pairs whose expiry falls in its
 * `bucketMs`; a lookup probes each live table once (a handful: the window
 * over `bucketMs`, and a bucket whose large table filled has more than one,
 * so that no insert rehashes a large table while requests wait), an insert
 * goes to its expiry's bucket, and a bucket is dropped whole once its end has
 * passed. Each entry keeps its own expiry
 * (to the ms when `bucketMs` ≤ 65,535), so a pair is free again exactly at
 * its expiry, not at its bucket's end.
 *
 * Exact for its digests: a pair is refused while its digest is held and
 * unexpired, so a collision between two digests can only refuse a fresh
 * pair, never accept a replay. Synchronous, so one process's reservations
 * are atomic.
 */
export class NonceTable {
  readonly #bucketMs: number;
  readonly #unitMs: number;
  readonly #maxBytes: number;
  readonly #sealFromSlots: number;
  /** Live buckets' tables, oldest bucket first, a bucket's newest table last among its own. */
  readonly #buckets: Bucket[] = [];
  #held = 0;
  #bytes = 0;

  constructor(options: NonceTableOptions) {
    if (!(Number.isSafeInteger(options.bucketMs) && options.bucketMs >= 1)) {
      throw new SmcpUsageError("bucketMs must be a positive integer (ms)");
    }
    if (!(Number.isFinite(options.maxBytes) && options.maxBytes >= MIN_SLOTS * SLOT_BYTES)) {
      throw new SmcpUsageError(`maxBytes must be at least ${MIN_SLOTS * SLOT_BYTES}`);
    }
    this.#bucketMs = options.bucketMs;
    this.#unitMs = Math.ceil(options.bucketMs / OFFSET_RANGE);
    this.#maxBytes = options.maxBytes;
    this.#sealFromSlots = options.sealFromSlots ?? SEAL_FROM_SLOTS;
    if (!(Number.isSafeInteger(this.#sealFromSlots) && this.#sealFromSlots >= MIN_SLOTS)) {
      throw new SmcpUsageError(`sealFromSlots must be an integer of at least ${MIN_SLOTS}`);
    }
  }

  /**
   * Reserves digest `(lo, hi)` (unsigned 32-bit words) until `expiresAt`.
   * False when it is held and unexpired at `now`; throws `unavailable` when
   * the tables are at `maxBytes` (nothing held is dropped to make room).
   */
  reserve(lo: number, hi: number, expiresAt: number, now: number): boolean {
    this.#drop(now);
    // Both words zero marks an empty slot: such a digest is filed as another (one more collision in 2^64).
    const wlo = lo === 0 && hi === 0 ? 1 : lo >>> 0;
    const whi = hi >>> 0;
    const fraction = whi / 4294967296;
    // Rounded up: a pair may be held a little past its expiry (never in ms buckets), never less.
    const until = Math.ceil(expiresAt);
    const number = Math.floor(until / this.#bucketMs);
    let target: Bucket | undefined;
    let slot = -1;
    let takeOver = false;
    for (const bucket of this.#buckets) {
      const keys = bucket.keys;
      let i = Math.floor(fraction * bucket.slots);
      let expired = false;
      for (;;) {
        const klo = keys[i * 2] as number;
        const khi = keys[i * 2 + 1] as number;
        if (klo === 0 && khi === 0) break;
        if (klo === wlo && khi === whi) {
          if (bucket.start + (bucket.offsets[i] as number) * this.#unitMs > now) return false;
          // Held once, expired now: taken over in place if this is its bucket (so a bucket has one copy at most).
          expired = true;
          break;
        }
        i = i + 1 === bucket.slots ? 0 : i + 1;
      }
      if (bucket.number === number) {
        target = bucket;
        slot = i;
        takeOver = expired;
      }
    }
    // Already expired: nothing to hold it for.
    if (until <= now) return true;
    const offset = Math.ceil((until - number * this.#bucketMs) / this.#unitMs);
    if (target && takeOver) {
      target.offsets[slot] = offset;
      return true;
    }
    if (!target) {
      target = this.#create(number);
      slot = this.#emptySlot(target, fraction);
    } else if (target.count + 1 > target.slots * MAX_LOAD) {
      // Rehashed when small, or when `maxBytes` leaves no room for a table of twice the slots beside it (a rehash
      // needs only the difference, and leaves expired entries out); else sealed.
      if (target.slots < this.#sealFromSlots || this.#spareSlots() < target.slots * 2) this.#grow(target, now);
      else target = this.#extend(target);
      slot = this.#emptySlot(target, fraction);
    }
    target.keys[slot * 2] = wlo;
    target.keys[slot * 2 + 1] = whi;
    target.offsets[slot] = offset;
    target.count++;
    this.#held++;
    return true;
  }

  /** Entries in live buckets (expired ones still count until their bucket is dropped: at most one bucket's worth). */
  get held(): number {
    return this.#held;
  }

  /** Bytes of the live buckets' arrays. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held when the tables reach `maxBytes` at a steady rate (buckets sized for a 0.6 load). */
  get capacityHeld(): number {
    return Math.floor((this.#maxBytes / SLOT_BYTES) * PRESIZE_LOAD);
  }

  /** Drops every bucket whose end has passed at `now`. */
  drop(now: number): void {
    this.#drop(now);
  }

  /** Drops everything. */
  clear(): void {
    this.#buckets.length = 0;
    this.#held = 0;
    this.#bytes = 0;
  }

  #drop(now: number): void {
    // Every entry of a bucket expires before its end, so the whole bucket goes: no per-entry work.
    while (this.#buckets.length > 0 && (this.#buckets[0] as Bucket).end <= now) {
      const bucket = this.#buckets.shift() as Bucket;
      this.#held -= bucket.count;
      this.#bytes -= bucket.slots * SLOT_BYTES;
    }
  }

  #create(number: number): Bucket {
    // Sized for the previous bucket's count (all its tables): at a steady rate the new one fills to the same
    // count without growing.
    let previous = 0;
    for (const b of this.#buckets) if (b.number === number - 1) previous += b.count;
    return this.#table(number, Math.max(MIN_SLOTS, Math.ceil(previous / PRESIZE_LOAD)));
  }

  /** Seals a bucket's full table: a new one of twice its slots takes its new entries. */
  #extend(bucket: Bucket): Bucket {
    return this.#table(bucket.number, bucket.slots * 2);
  }

  /** A new empty table for bucket `number`, after the bucket's other tables (lookups probe them all). */
  #table(number: number, wanted: number): Bucket {
    const slots = Math.min(wanted, this.#spareSlots());
    if (slots < MIN_SLOTS) this.#full();
    const bucket: Bucket = {
      number,
      start: number * this.#bucketMs,
      end: (number + 1) * this.#bucketMs,
      slots,
      count: 0,
      keys: new Uint32Array(slots * 2),
      offsets: new Uint16Array(slots),
    };
    this.#bytes += slots * SLOT_BYTES;
    const at = this.#buckets.findIndex((b) => b.number > number);
    this.#buckets.splice(at < 0 ? this.#buckets.length : at, 0, bucket);
    return bucket;
  }

  /** Rehashes a bucket's newest table into twice the slots (or what `maxBytes` leaves), leaving out expired entries. */
  #grow(bucket: Bucket, now: number): void {
    const live = this.#liveCount(bucket, now);
    const slots = Math.min(bucket.slots * 2, bucket.slots + this.#spareSlots());
    if (live + 1 > slots * MAX_LOAD) this.#full();
    const keys = new Uint32Array(slots * 2);
    const offsets = new Uint16Array(slots);
    const old = bucket.keys;
    for (let i = 0; i < bucket.slots; i++) {
      const lo = old[i * 2] as number;
      const hi = old[i * 2 + 1] as number;
      if (lo === 0 && hi === 0) continue;
      const offset = bucket.offsets[i] as number;
      if (bucket.start + offset * this.#unitMs <= now) continue;
      let j = Math.floor((hi / 4294967296) * slots);
      while ((keys[j * 2] as number) !== 0 || (keys[j * 2 + 1] as number) !== 0) j = j + 1 === slots ? 0 : j + 1;
      keys[j * 2] = lo;
      keys[j * 2 + 1] = hi;
      offsets[j] = offset;
    }
    this.#held -= bucket.count - live;
    this.#bytes += (slots - bucket.slots) * SLOT_BYTES;
    bucket.keys = keys;
    bucket.offsets = offsets;
    bucket.slots = slots;
    bucket.count = live;
  }

  #liveCount(bucket: Bucket, now: number): number {
    let live = 0;
    for (let i = 0; i < bucket.slots; i++) {
      if ((bucket.keys[i * 2] as number) === 0 && (bucket.keys[i * 2 + 1] as number) === 0) continue;
      if (bucket.start + (bucket.offsets[i] as number) * this.#unitMs > now) live++;
    }
    return live;
  }

  #emptySlot(bucket: Bucket, fraction: number): number {
    let i = Math.floor(fraction * bucket.slots);
    while ((bucket.keys[i * 2] as number) !== 0 || (bucket.keys[i * 2 + 1] as number) !== 0) {
      i = i + 1 === bucket.slots ? 0 : i + 1;
    }
    return i;
  }

  #spareSlots(): number {
    return Math.floor((this.#maxBytes - this.#bytes) / SLOT_BYTES);
  }

  #full(): never {
    throw new SmcpError("unavailable", "the replay cache is full; retry later");
  }
}
