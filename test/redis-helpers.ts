import { Redis } from "ioredis";

/** The Redis every test talks to (CI starts it; see .ci/run). */
export const REDIS_URL = process.env.SMCP_TEST_REDIS ?? "redis://127.0.0.1:6379/0";

/** Deletes every key under a test's prefix. */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** Resolves once a Redis on this port answers PING: a started redis-server prints before it listens. */
export async function redisReady(port: number, timeoutMs = 10_000): Promise<void> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 20, maxRetriesPerRequest: 0 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if ((await redis.ping().catch(() => "")) === "PONG") return;
      if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer PING`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    redis.disconnect();
  }
}
