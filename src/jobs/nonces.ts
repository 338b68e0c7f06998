import * as crypto from "node:crypto";

/** What a replay cache holds, for a gauge and an early warning before its cap. */
export interface NonceStoreStats {
  /**
   * Pairs held. Memory: in this process's cache. SQLite and Redis: pairs
   * this process reserved that have not expired yet (the store is shared:
   * sum over the processes for the store's total).
   */
  held: number;
  /** Pairs the store holds when it reaches its cap (memory: from `maxBytes`). */
  capacityHeld?: number;
  /** Bytes the store uses. Memory: its tables. SQLite: the file's pages in use (jobs too). Redis: the server's `used_memory`. */
  bytes?: number;
  /** Bytes at the cap. Memory and SQLite: `maxBytes`. Redis: the server's `maxmemory`, when set. */
  capacityBytes?: number;
}

/**
 * Remembers `(client_id, nonce)` pairs for as long as an envelope carrying
 * them could still be fresh. Implementations must be atomic: of many
 * concurrent reservations of one pair, exactly one succeeds.
 */
export interface NonceStore {
  /**
   * Reserves the pair until `expiresAt` (ms): refused (false) until then,
   * free again from then on. True when it was free; false when it is held
   * (a replay). Throws when the store is unreachable or full: the server
   * then fails closed with `unavailable`, and nothing held is forgotten early.
   */
  reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean>;
  /**
   * What the store holds now, and its cap (for the `smcp_nonces_held` gauge
   * and a warning near the cap). Synchronous and cheap: Redis reports the
   * memory figures of its last check (at most `policyCheckEveryMs` old).
   */
  stats?(): NonceStoreStats;
  close(): Promise<void>;
}

/** How full a store is, 0..1: the larger of held / capacityHeld and bytes / capacityBytes; undefined without a cap. */
export function nonceStoreFill(stats: NonceStoreStats): number | undefined {
  const ratios: number[] = [];
  if (stats.capacityHeld) ratios.push(stats.held / stats.capacityHeld);
  if (stats.capacityBytes && stats.bytes !== undefined) ratios.push(stats.bytes / stats.capacityBytes);
  return ratios.length === 0 ? undefined : Math.max(...ratios);
}

/** One string key for a pair, unambiguous whatever the ids contain. */
export function nonceKey(clientId: string, nonce: string): string {
  return `${clientId.length}:${clientId}:${nonce}`;
}

/**
 * The shared stores' fixed-size key for a pair: the first 16 bytes of
 * SHA-256 over {@link nonceKey}. Unkeyed, so every process of a deployment
 * computes the same one; aiming a collision at another client's pair would
 * take a second preimage of 128 bits, and neither SQLite's B-tree nor
 * Redis's (seeded) hash table degrades under chosen keys.
 */
export function nonceDigest(clientId: string, nonce: string): Buffer {
  return sha256(nonceKey(clientId, nonce)).subarray(0, 16);
}

/** SHA-256 of a string's UTF-8 bytes: one-shot `crypto.hash` (no Hash object per call) where Node has it (20.12+). */
export const sha256: (text: string) => Buffer =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "buffer")
    : (text) => crypto.createHash("sha256").update(text).digest();

/** SHA-256 of a string's UTF-8 bytes as base64url text (43 characters), without a Buffer where Node has `crypto.hash`. */
export const sha256Base64url: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "base64url")
    : (text) => crypto.createHash("sha256").update(text).digest("base64url");
