import type { Redis } from "ioredis";
import { type NonceStore, type NonceStoreStats, nonceKey, sha256 } from "../../jobs/nonces.js";
import { SmcpError, SmcpUsageError } from "../../protocol/errors.js";
import { NonceCount } from "../nonce-count.js";

/** Options for {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** Prefix of every key. Default `smcp:`. */
  prefix?: string;
  /** Disconnect the connection on `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
  /** How often the server's eviction policy is checked again, ms. Default 60,000. */
  policyCheckEveryMs?: number;
  now?: () => number;
}

/** Client tags remembered at most (client ids come from the keyring, so few; the bound is for safety). */
const MAX_TAGS = 10_000;

/**
 * Replay cache in Redis, shared by every replica: one `SET key 1 PX ttl NX`
 * per request (one round trip), atomic across replicas, expiring by itself
 * when the envelope could no longer be fresh.
 *
 * Keys have a fixed length and carry neither the client id nor the nonce:
 * `{prefix}nonce:{<tag>}:<digest>`, where the tag is 48 bits of SHA-256 of
 * the client id (a Redis Cluster hash tag: one client's nonces share a
 * slot, clients spread over the shards) and the digest is 132 bits of
 * SHA-256 of the pair (collisions: see `nonceDigest`). The value `1`
 * is one of Redis's shared integers, so a key costs its name, its entries
 * in the key and expiry tables, and nothing more.
 *
 * Fail closed: with the connection down or Redis out of memory
 * (`maxmemory` under `noeviction`), `reserve` throws and the server answers
 * `unavailable`. A Redis that may evict keys (`maxmemory` set with any
 * other policy) could forget a nonce before it expires, so reservations are
 * refused (with an error naming the fix) until its policy is `noeviction`.
 */
export class RedisNonceStore implements NonceStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #closeConnection: boolean;
  readonly #policyCheckEveryMs: number;
  readonly #tags = new Map<string, string>();
  readonly #count = new NonceCount();
  /** The last policy check: resolves to the refusal to raise, or undefined when Redis keeps every key until it expires. */
  #policy: Promise<Error | undefined> | undefined;
  #policyCheckedAt = 0;
  /** `used_memory` and `maxmemory` at the last policy check. */
  #memory: { used: number; max: number } | undefined;

  constructor(redis: Redis, options: RedisNonceStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "smcp:";
    this.#now = options.now ?? Date.now;
    this.#closeConnection = options.closeConnection ?? false;
    this.#policyCheckEveryMs = options.policyCheckEveryMs ?? 60_000;
  }

  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    if (!Number.isFinite(expiresAt)) throw new SmcpUsageError("expiresAt must be a finite time in ms");
    const refusal = await this.#checkPolicy();
    if (refusal) throw refusal;
    const now = this.#now();
    const ttl = Math.max(1, Math.ceil(expiresAt - now));
    let answer: string | null;
    try {
      answer = await this.#redis.set(this.key(clientId, nonce), "1", "PX", ttl, "NX");
    } catch (error) {
      if (/^OOM\b/.test((error as Error).message ?? "")) {
        throw new SmcpError("unavailable", "the replay cache is full; retry later");
      }
      throw error;
    }
    if (answer !== "OK") return false;
    this.#count.add(expiresAt, now);
    return true;
  }

  /** The key a pair is held under (fixed length for a given prefix). */
  key(clientId: string, nonce: string): string {
    let tag = this.#tags.get(clientId);
    if (tag === undefined) {
      if (this.#tags.size >= MAX_TAGS) this.#tags.clear();
      tag = sha256(clientId).toString("base64url").slice(0, 8);
      this.#tags.set(clientId, tag);
    }
    return `${this.#prefix}nonce:{${tag}}:${sha256(nonceKey(clientId, nonce)).toString("base64url").slice(0, 22)}`;
  }

  stats(): NonceStoreStats {
    // The memory figures come from the policy check's INFO; a stale one is refreshed for the next call.
    if (this.#now() - this.#policyCheckedAt >= this.#policyCheckEveryMs) void this.#checkPolicy();
    const memory = this.#memory;
    return {
      held: this.#count.held(this.#now()),
      ...(memory ? { bytes: memory.used } : {}),
      ...(memory && memory.max > 0 ? { capacityBytes: memory.max } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.#closeConnection) this.#redis.disconnect();
  }

  /** Checks (at most every `policyCheckEveryMs`, one request waiting for it) that Redis never evicts keys early. */
  #checkPolicy(): Promise<Error | undefined> {
    const now = this.#now();
    if (this.#policy && now - this.#policyCheckedAt < this.#policyCheckEveryMs) return this.#policy;
    this.#policyCheckedAt = now;
    const check = this.#redis.info("memory").then(
      (text) => {
        const memory = parseInfo(text);
        const policy = memory.get("maxmemory_policy") ?? "noeviction";
        const max = Number(memory.get("maxmemory") ?? 0);
        this.#memory = { used: Number(memory.get("used_memory") ?? 0), max };
        if (max === 0 || policy === "noeviction") return undefined;
        return new Error(
          `Redis may evict replay-cache keys before they expire (maxmemory set, maxmemory-policy ${policy}): set maxmemory-policy noeviction`,
        );
      },
      (error: unknown) => {
        // INFO refused (an ACL without it): the policy cannot be checked; it is the operator's to set.
        if (/NOPERM|unknown command/i.test((error as Error).message ?? "")) return undefined;
        // Unreachable: this request fails as its SET would; the next one checks again.
        this.#policy = undefined;
        return error as Error;
      },
    );
    this.#policy = check;
    return check;
  }
}

/** `INFO` text as name → value. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
