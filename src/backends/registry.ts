import type { RegistryStorage } from "../auth/store.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { redactUrl } from "../util/redact.js";

/**
 * Opens where a store URL keeps the client registry (issue 20): `sqlite:PATH`
 * (a table in the file) or `redis://…` (a hash under the URL's prefix);
 * `memory` for tests. Each backend's code is loaded only when asked for.
 */
export async function openRegistryStorage(url: string): Promise<RegistryStorage> {
  if (url === "memory") return new (await import("./memory/registry.js")).MemoryRegistryStorage();
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") throw new SmcpUsageError("sqlite: needs a file, e.g. --store sqlite:.smcp/smcp.db");
    return new (await import("./sqlite/registry.js")).SqliteRegistryStorage(path);
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://") || url.startsWith("redis+cluster://")) {
    const { connectRedis, parseRedisUrl } = await import("./redis/connection.js");
    const target = parseRedisUrl(url);
    const redis = await connectRedis(target);
    return new (await import("./redis/registry.js")).RedisRegistryStorage(redis, target.prefix);
  }
  throw new SmcpUsageError(
    `store '${redactUrl(url)}' cannot hold the client registry; use sqlite:PATH or redis://HOST:PORT[/DB] (or a --clients FILE)`,
  );
}
