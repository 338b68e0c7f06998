import * as crypto from "node:crypto";
import { type NonceStore, type NonceStoreStats, nonceKey } from "../../jobs/nonces.js";
import { SmcpUsageError } from "../../protocol/errors.js";
import { NonceTable } from "./nonce-table.js";

/** Options for {@link MemoryNonceStore}. */
export interface MemoryNonceStoreOptions {
  /**
   * Bytes the cache may use (its typed arrays; about 18 per held pair).
   * Past it new requests fail closed with `unavailable` until buckets
   * expire; nothing held is forgotten early. Default 256 MiB (about
   * 16 million pairs: 48,000 requests a second for the default window).
   */
  maxBytes?: number;
  /**
   * Width of a time bucket, ms. A lookup probes every live bucket (the
   * longest lifetime over this), and a bucket is dropped when its last
   * expiry has passed (so up to this long late). Default 60,000: about 6
   * buckets for the default ±300 s window; keep it near a fifth of the window.
   */
  bucketMs?: number;
  now?: () => number;
}

/** 256 MiB. */
const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/**
 * In-process replay cache: exact for one process, lost on restart.
 *
 * It holds a 64-bit keyed digest of each pair (the first 8 bytes of
 * SHA-256 over a per-process random 128-bit key and the pair), not the
 * pair: about 18 bytes a held pair, in typed arrays the garbage collector
 * never walks (see `NonceTable`). The key is never exposed, so a
 * client cannot choose nonces that collide or crowd one part of the table
 * (the digests never leave the process, so the secret-prefix construction's
 * weakness, length extension, needs an output it never gets; HMAC would
 * cost three times as much per request).
 *
 * Collisions: a new pair is refused as a replay only if its digest equals
 * one of the `n` held, with probability n / 2^64: 5.4e-13 a request at 10
 * million held (30,000 requests a second for the default window), about
 * one spurious `replay` answer every 1.8e12 requests, or once in about two
 * years at that rate. The client sees `replay` and sends a new nonce. A replay is
 * never accepted: the same pair always has the same digest.
 */
export class MemoryNonceStore implements NonceStore {
  readonly #table: NonceTable;
  readonly #now: () => number;
  readonly #maxBytes: number;
  // A hex string, prepended to the pair's text: one string for crypto.hash, no Buffer per request.
  readonly #key = crypto.randomBytes(16).toString("hex");

  constructor(options: MemoryNonceStoreOptions = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(Number.isFinite(this.#maxBytes) && this.#maxBytes >= 64 * 1024)) {
      throw new SmcpUsageError("maxBytes must be at least 65536");
    }
    this.#table = new NonceTable({ bucketMs: options.bucketMs ?? 60_000, maxBytes: this.#maxBytes });
    this.#now = options.now ?? Date.now;
  }

  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (!Number.isFinite(expiresAt)) throw new SmcpUsageError("expiresAt must be a finite time in ms");
    const digest = keyedDigest(this.#key + nonceKey(clientId, nonce));
    const lo =
      (digest.charCodeAt(0) | (digest.charCodeAt(1) << 8) | (digest.charCodeAt(2) << 16) | (digest.charCodeAt(3) << 24)) >>> 0;
    const hi =
      (digest.charCodeAt(4) | (digest.charCodeAt(5) << 8) | (digest.charCodeAt(6) << 16) | (digest.charCodeAt(7) << 24)) >>> 0;
    return this.#table.reserve(lo, hi, expiresAt, this.#now());
  }

  /** Pairs held (for tests; {@link stats} for metrics). */
  get size(): number {
    return this.#table.held;
  }

  stats(): NonceStoreStats {
    this.#table.drop(this.#now());
    return {
      held: this.#table.held,
      capacityHeld: this.#table.capacityHeld,
      bytes: this.#table.bytes,
      capacityBytes: this.#maxBytes,
    };
  }

  async close(): Promise<void> {
    this.#table.clear();
  }
}

/** SHA-256 as a binary string (one char a byte): `crypto.hash` where Node has it (20.12+), without a Buffer per call. */
const keyedDigest: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "binary")
    : (text) => crypto.createHash("sha256").update(text).digest("binary");
