import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** Options for {@link openSqlite}. */
export interface OpenSqliteOptions {
  /**
   * `FULL`: a commit is on disk before it returns (jobs). `NORMAL`: in WAL
   * mode, safe against a process crash, not a power loss (the replay cache,
   * on the request hot path). Set per connection.
   */
  synchronous: "FULL" | "NORMAL";
}

/** Opens (creating if needed) a SQLite file in WAL mode, shared safely by the processes of one host. */
export function openSqlite(path: string, options: OpenSqliteOptions): Database.Database {
  if (path !== ":memory:") {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Job args and results may be sensitive: create the file owner-only (SQLite gives -wal/-shm the same mode).
    closeSync(openSync(path, "a", 0o600));
  }
  const db = new Database(path, { timeout: 5000 });
  // Switching a new file to WAL takes a lock SQLite does not wait for (no busy handler): processes
  // opening one new file at once (`serve --workers N`) got "database is locked". Retry, bounded.
  for (let attempt = 1; ; attempt++) {
    try {
      db.pragma("journal_mode = WAL");
      break;
    } catch (error) {
      if (
        attempt >= 50 ||
        !/SQLITE_BUSY|database is locked/.test(`${(error as { code?: string }).code} ${(error as Error).message}`)
      ) {
        db.close();
        throw error;
      }
      // A synchronous pause: this runs once per process, at start.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 + Math.floor(Math.random() * 80));
    }
  }
  db.pragma(`synchronous = ${options.synchronous}`);
  db.pragma("busy_timeout = 5000");
  return db;
}
