import { createRequire } from "node:module";
import type { RateLimiterPostgres } from "rate-limiter-flexible";
import type { OpenedStores, OpenStoresOptions } from "../../jobs/stores.js";
import { SmcpUsageError } from "../../protocol/errors.js";
import { PostgresConnection, parsePostgresUrl } from "./connection.js";
import { PostgresJobStore } from "./jobs.js";
import { migrate, SCHEMA_VERSION } from "./migrations.js";
import { PostgresNonceStore } from "./nonces.js";
import { PostgresJobQueue } from "./queue.js";

const requireLib = createRequire(import.meta.url);

/** Options for {@link openPostgresStores}. */
export interface OpenPostgresStoresOptions extends OpenStoresOptions {
  /**
   * Bring the schema to this smcp's version at open (creating it on first
   * start). False: only check it, and refuse an older one (a DBA runs `smcp
   * migrate`). Default true.
   */
  migrate?: boolean;
}

/**
 * Opens the PostgreSQL stores of a `postgres://` URL, sharing one pool and
 * one LISTEN connection: jobs and the replay cache shared by every replica,
 * a queue each process claims from (woken by NOTIFY), and rate counters in
 * the database so a client's limit holds across replicas (fails closed;
 * written on a small pool of their own with `synchronous_commit = off`).
 */
export async function openPostgresStores(url: string, options: OpenPostgresStoresOptions = {}): Promise<OpenedStores> {
  const target = parsePostgresUrl(url);
  const connection = await PostgresConnection.open(target.url, {
    poolMax: target.poolMax,
    ...(options.onError ? { onError: options.onError } : {}),
  });
  const schema = target.schema;
  try {
    const status = await migrate(connection, schema, { apply: options.migrate ?? true });
    if (status.to !== SCHEMA_VERSION) {
      throw new SmcpUsageError(
        `schema ${schema} is at version ${status.to}; this smcp needs ${SCHEMA_VERSION}: run \`smcp migrate --store URL\``,
      );
    }
  } catch (error) {
    await connection.close();
    throw error;
  }
  return {
    jobStore: new PostgresJobStore(connection, {
      schema,
      closeConnection: true,
      ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
    }),
    nonceStore: new PostgresNonceStore(connection.retain(), { schema, closeConnection: true }),
    jobQueue: (deps) => new PostgresJobQueue({ ...deps, connection, schema }),
    rateLimiter: (config) => {
      const Postgres = requireLib("rate-limiter-flexible/lib/RateLimiterPostgres.js") as typeof RateLimiterPostgres;
      return new Postgres({
        ...config,
        // Counters a server crash may roll back a moment of: no fsync wait per request (see countersPool).
        storeClient: connection.countersPool,
        storeType: "pool",
        schemaName: schema,
        tableName: "rate_limits",
        // The table is the migration's; the limiter only deletes rows expired an hour ago, every 5 minutes.
        tableCreated: true,
        clearExpiredByTimeout: true,
      });
    },
  };
}

/** Opens the stores a `postgres://` URL names (every backend exports `open(url, options)`). */
export const open: (url: string, options?: OpenStoresOptions) => Promise<OpenedStores> = openPostgresStores;
