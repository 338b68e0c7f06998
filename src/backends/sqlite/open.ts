import { ClaimingJobQueue } from "../../jobs/claiming-queue.js";
import type { OpenedStores, OpenStoresOptions } from "../../jobs/stores.js";
import { SmcpUsageError } from "../../protocol/errors.js";
import { SqliteJobStore } from "./jobs.js";
import { SqliteNonceStore } from "./nonces.js";

/** Opens the SQLite stores in one file (WAL): jobs, the replay cache, and a queue every process on the host polls. */
export function openSqliteStores(path: string, options: OpenStoresOptions = {}): OpenedStores {
  let jobStore: SqliteJobStore;
  try {
    jobStore = new SqliteJobStore(path, options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs });
  } catch (error) {
    throw new SmcpUsageError(`cannot open ${path}: ${(error as Error).message}; check the path and its permissions`);
  }
  return {
    jobStore,
    nonceStore: new SqliteNonceStore(path),
    // Other processes on the host queue jobs in the same file: look for them four times a second.
    jobQueue: (deps) => new ClaimingJobQueue({ ...deps, pollMs: 250 }),
  };
}

/** Opens the stores a `sqlite:PATH` URL names (every backend exports `open(url, options)`). */
export async function open(url: string, options: OpenStoresOptions = {}): Promise<OpenedStores> {
  const path = url.slice("sqlite:".length);
  if (path === "") throw new SmcpUsageError("sqlite: needs a file, e.g. --store sqlite:.smcp/smcp.db");
  return openSqliteStores(path, options);
}
