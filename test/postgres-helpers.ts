import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrate, PostgresConnection } from "../src/postgres.js";

/** The PostgreSQL every test talks to (trust auth on loopback; CI starts it). */
export const PG_URL = process.env.SMCP_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses: `smcp_t_<hex>`. */
export const schemaName = (): string => `smcp_t_${randomBytes(6).toString("hex")}`;

/** A store URL for a schema of its own (and a small pool: the server's connections are shared by many test runs). */
export const storeUrl = (schema: string, poolMax = 4): string => `${PG_URL}?schema=${schema}&pool_max=${poolMax}`;

/**
 * Schemas a test file made, dropped by {@link Schemas.dropAll} (in `after`),
 * and the connections it opened (closed there too).
 */
export class Schemas {
  readonly #made = new Set<string>();
  readonly #connections: PostgresConnection[] = [];

  /** A fresh schema name, dropped at the end. */
  name(): string {
    const name = schemaName();
    this.#made.add(name);
    return name;
  }

  /** A fresh schema, migrated. */
  async migrated(connection: PostgresConnection): Promise<string> {
    const name = this.name();
    await migrate(connection, name);
    return name;
  }

  /** A connection of the test file's own (another process would have its own), closed at the end. */
  async connect(poolMax = 3, applicationName = "smcp-test"): Promise<PostgresConnection> {
    const connection = await PostgresConnection.open(PG_URL, { poolMax, applicationName });
    this.#connections.push(connection);
    return connection;
  }

  /** Drops every schema made here and closes the connections. */
  async dropAll(): Promise<void> {
    for (const c of this.#connections) await c.close();
    await dropSchemas([...this.#made]);
    this.#made.clear();
  }
}

/** Drops schemas (and all in them), over a connection of its own. */
export async function dropSchemas(names: string[], url = PG_URL): Promise<void> {
  if (names.length === 0) return;
  await sql(async (client) => {
    await client.query("SET client_min_messages = warning");
    for (const name of names) await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
  }, url);
}

/** Runs `work` on a client of its own (the test's direct look at the database), then closes it. */
export async function sql<T>(work: (client: pg.Client) => Promise<T>, url = PG_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "smcp-test-admin" });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Ends every session whose application_name is `name` (as an outage would); returns how many. */
export async function terminateSessions(name: string): Promise<number> {
  return sql(async (client) => {
    const result = await client.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
      [name],
    );
    return result.rowCount ?? 0;
  });
}
