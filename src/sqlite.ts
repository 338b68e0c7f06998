// `smcp/sqlite`: jobs and the replay cache in a SQLite file (better-sqlite3, an optional peer dependency).

export { type OpenSqliteOptions, openSqlite } from "./stores/sqlite/connection.js";
export { SqliteJobStore, type SqliteJobStoreOptions } from "./stores/sqlite/jobs.js";
export { SqliteNonceStore, type SqliteNonceStoreOptions } from "./stores/sqlite/nonces.js";
export { openSqliteStores } from "./stores/sqlite/open.js";
