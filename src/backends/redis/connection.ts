import { Redis } from "ioredis";
import { SmcpUsageError } from "../../protocol/errors.js";
import { redactUrl } from "../../util/redact.js";

/** A Redis store URL, split into what ioredis takes and smcp's key prefix. */
export interface RedisTarget {
  /** `redis://[user:pass@]host:port[/db]` without smcp's own parameters. */
  url: string;
  /** Prefix of every smcp key (`?prefix=`; default `smcp:`). */
  prefix: string;
}

/** Parses `redis://HOST:PORT[/DB][?prefix=P]` (also `rediss://`). */
export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SmcpUsageError("the Redis store URL is malformed; use redis://HOST:PORT[/DB][?prefix=P]");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new SmcpUsageError("the Redis store URL must start with redis:// or rediss://");
  }
  const prefix = url.searchParams.get("prefix") ?? "smcp:";
  url.searchParams.delete("prefix");
  return { url: url.toString(), prefix };
}

/**
 * Opens a Redis connection that fails fast: with the server down, commands
 * reject at once (no offline queue), so requests fail closed with
 * `unavailable` instead of hanging; ioredis keeps reconnecting in the
 * background and service resumes by itself. `blocking` connections (BullMQ
 * workers) retry commands instead, as BullMQ requires.
 */
export async function connectRedis(
  target: RedisTarget,
  options: { blocking?: boolean; onError?: (error: Error) => void } = {},
): Promise<Redis> {
  const redis = new Redis(target.url, {
    lazyConnect: true,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    ...(options.blocking ? { maxRetriesPerRequest: null } : { enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
  });
  // Errors are reported once per outage, not once per reconnect attempt.
  let reported = false;
  redis.on("error", (error: Error) => {
    if (!reported) options.onError?.(error);
    reported = true;
  });
  redis.on("ready", () => {
    reported = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new SmcpUsageError(`cannot reach Redis at ${redactUrl(target.url)}: ${(error as Error).message}`);
  }
  return redis;
}
