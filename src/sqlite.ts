// `smcp/sqlite`: jobs and the replay cache in a SQLite file (better-sqlite3, an optional peer dependency).

export { type OpenSqliteOptions, openSqlite } from "./backends/sqlite/connection.js";
export { SqliteJobStore, type SqliteJobStoreOptions } from "./backends/sqlite/jobs.js";
export { SqliteNonceStore, type SqliteNonceStoreOptions } from "./backends/sqlite/nonces.js";
export { openSqliteStores } from "./backends/sqlite/open.js";
