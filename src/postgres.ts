// `smcp/postgres`: jobs, the replay cache and rate counters in PostgreSQL (pg, an optional peer dependency).

export {
  type ChannelSubscriber,
  DEFAULT_SCHEMA,
  PostgresConnection,
  type PostgresConnectionOptions,
  type PostgresTarget,
  parsePostgresUrl,
} from "./backends/postgres/connection.js";
export { eventsChannel, PostgresJobStore, type PostgresJobStoreOptions } from "./backends/postgres/jobs.js";
export {
  currentVersion,
  MIGRATIONS,
  type Migration,
  type MigrationStatus,
  migrate,
  migrationSql,
  SCHEMA_VERSION,
} from "./backends/postgres/migrations.js";
export { PostgresNonceStore, type PostgresNonceStoreOptions } from "./backends/postgres/nonces.js";
export { type OpenPostgresStoresOptions, openPostgresStores } from "./backends/postgres/open.js";
export { PostgresJobQueue, type PostgresJobQueueOptions } from "./backends/postgres/queue.js";
