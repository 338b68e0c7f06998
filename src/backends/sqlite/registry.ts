import type { Database, Statement } from "better-sqlite3";
import type { RegistryStorage } from "../../auth/store.js";
import { openSqlite } from "./connection.js";

/**
 * The client registry in a SQLite file: one row (the document and its
 * version), written with compare-and-set. Replicas on one host share the
 * file and read the version every 250 ms: one indexed read of one row.
 */
export class SqliteRegistryStorage implements RegistryStorage {
  readonly #db: Database;
  readonly #version: Statement<[], { version: number }>;
  readonly #read: Statement<[], { version: number; doc: string }>;
  readonly #write: Statement<[{ doc: string; expected: number }]>;

  constructor(path: string) {
    // FULL: a revocation is on disk when `smcp clients remove` returns.
    this.#db = openSqlite(path, { synchronous: "FULL" });
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS smcp_client_registry (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, doc TEXT NOT NULL)",
    );
    this.#version = this.#db.prepare("SELECT version FROM smcp_client_registry WHERE id = 1");
    this.#read = this.#db.prepare("SELECT version, doc FROM smcp_client_registry WHERE id = 1");
    this.#write = this.#db.prepare(
      "INSERT INTO smcp_client_registry (id, version, doc) VALUES (1, 1, @doc) ON CONFLICT (id) DO UPDATE SET version = version + 1, doc = excluded.doc WHERE version = @expected",
    );
  }

  async version(): Promise<number> {
    return this.#version.get()?.version ?? 0;
  }

  async read(): Promise<{ version: number; text: string | undefined }> {
    const row = this.#read.get();
    return row ? { version: row.version, text: row.doc } : { version: 0, text: undefined };
  }

  async write(expected: number, text: string): Promise<boolean> {
    // The first write inserts (expected 0); later ones update only at the expected version.
    const apply = this.#db.transaction(() => {
      const now = this.#version.get()?.version ?? 0;
      if (now !== expected) return false;
      return this.#write.run({ doc: text, expected }).changes === 1;
    });
    return apply.immediate();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
