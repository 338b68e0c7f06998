import type { Redis } from "ioredis";
import type { RegistryStorage } from "../../auth/store.js";

// Compare-and-set in one step: the document is written only at the version the writer read.
const WRITE = `
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', v + 1, 'doc', ARGV[2])
return 1`;

/**
 * The client registry in Redis: one hash (`<prefix>clients`, fields
 * `version` and `doc`), written with compare-and-set. Replicas read the
 * version every 250 ms: one HGET.
 */
export class RedisRegistryStorage implements RegistryStorage {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}clients`;
  }

  async version(): Promise<number> {
    return Number((await this.#redis.hget(this.#key, "version")) ?? 0);
  }

  async read(): Promise<{ version: number; text: string | undefined }> {
    const [version, doc] = await this.#redis.hmget(this.#key, "version", "doc");
    return { version: Number(version ?? 0), text: doc ?? undefined };
  }

  async write(expected: number, text: string): Promise<boolean> {
    return (await this.#redis.eval(WRITE, 1, this.#key, String(expected), text)) === 1;
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
