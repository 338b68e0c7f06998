import type { Redis } from "ioredis";
import { type NonceStore, nonceKey } from "./store.js";

/** Options for {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** Prefix of every key. Default `smcp:`. */
  prefix?: string;
  /** Disconnect the connection on `close()` (when the store owns it). Default false. */
  closeConnection?: boolean;
  now?: () => number;
}

/**
 * Replay cache in Redis, shared by every replica: one `SET key 1 PX ttl NX`
 * per request, atomic across replicas, expiring by itself when the envelope
 * could no longer be fresh. With the connection down, `reserve` throws and
 * the server fails closed (`unavailable`).
 */
export class RedisNonceStore implements NonceStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #closeConnection: boolean;

  constructor(redis: Redis, options: RedisNonceStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? "smcp:";
    this.#now = options.now ?? Date.now;
    this.#closeConnection = options.closeConnection ?? false;
  }

  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAt - this.#now()));
    return (await this.#redis.set(`${this.#prefix}nonce:${nonceKey(clientId, nonce)}`, "1", "PX", ttl, "NX")) === "OK";
  }

  async close(): Promise<void> {
    if (this.#closeConnection) this.#redis.disconnect();
  }
}
