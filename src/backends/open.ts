import type { OpenedStores, OpenStoresOptions } from "../jobs/stores.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { redactUrl } from "../util/redact.js";

export type { OpenedStores, OpenStoresOptions } from "../jobs/stores.js";

/**
 * Opens the stores named by a URL: `memory` (one process, lost on restart),
 * `sqlite:PATH` (durable, shared by the processes of one host),
 * `redis://HOST:PORT[/DB][?prefix=P]` (shared by replicas; jobs through
 * BullMQ), `redis+cluster://HOST:PORT[,HOST:PORT…][/?prefix=NAME]` (the same on a Redis Cluster), `postgres://USER@HOST:PORT/DB[?schema=NAME]` (shared by
 * replicas; jobs claimed from the database). Each backend's code is loaded
 * only when asked for.
 */
export async function openStores(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  // Each backend in its own folder, loaded only when its URL is asked for (its packages are optional peers).
  if (url === "memory") return (await import("./memory/open.js")).open(url, options);
  if (url.startsWith("sqlite:"))
    return (await importStore(() => import("./sqlite/open.js"), "better-sqlite3")).open(url, options);
  if (url.startsWith("redis://") || url.startsWith("rediss://") || url.startsWith("redis+cluster://")) {
    return (await importStore(() => import("./redis/open.js"), "ioredis bullmq")).open(url, options);
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    return (await importStore(() => import("./postgres/open.js"), "pg")).open(url, options);
  }
  throw new SmcpUsageError(
    `store '${redactUrl(url)}' is not supported; use memory, sqlite:PATH, redis://HOST:PORT[/DB], redis+cluster://HOST:PORT,… or postgres://USER@HOST:PORT/DB`,
  );
}

/** Loads a store backend; its packages are optional peer dependencies, so a missing one gets the install line. */
async function importStore<T>(load: () => Promise<T>, packages: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND") {
      throw new SmcpUsageError(`this store needs ${packages}: run \`npm install ${packages}\``);
    }
    throw error;
  }
}
