import type { RegistryStorage } from "../../auth/store.js";
import type { RedisClient } from "./jobs.js";
import { loadScript } from "./scripts.js";

// Compare-and-set in one step: the document is written only at the version the writer read.
const WRITE = loadScript("registry-write");

/**
 * The client registry in Redis: one hash (`<prefix>clients`, fields
 * `version` and `doc`), written with compare-and-set. Replicas read the
 * version every 250 ms: one HGET.
 */
export class RedisRegistryStorage implements RegistryStorage {
  readonly #redis: RedisClient;
  readonly #key: string;

  constructor(redis: RedisClient, prefix: string) {
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
    return (await this.#redis.eval(WRITE.lua, WRITE.keys, this.#key, String(expected), text)) === 1;
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
