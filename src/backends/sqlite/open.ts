import { ClaimingJobQueue } from "../../jobs/claiming-queue.js";
import type { OpenedStores, OpenStoresOptions } from "../../jobs/stores.js";
import { SmcpUsageError } from "../../protocol/errors.js";
import { SqliteJobStore } from "./jobs.js";
import { SqliteNonceStore } from "./nonces.js";

/** Opens the SQLite stores in one file (WAL): jobs, the replay cache, and a queue every process on the host polls. */
export function openSqliteStores(path: string, options: OpenStoresOptions = {}): OpenedStores {
  let jobStore: SqliteJobStore | undefined;
  // Processes starting together on a new file (`serve --workers N`) may find its schema being
  // written by another: a lock past the busy timeout is waited out a few times, then reported.
  for (let attempt = 1; jobStore === undefined; attempt++) {
    try {
      jobStore = new SqliteJobStore(path, options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs });
    } catch (error) {
      const message = (error as Error).message;
      if (attempt < 4 && /database is locked|SQLITE_BUSY/.test(message)) continue;
      throw new SmcpUsageError(`cannot open ${path}: ${message}; check the path and its permissions`);
    }
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
