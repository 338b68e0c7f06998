import { SmcpUsageError } from "../../protocol/errors.js";
import { advisoryKey, type PostgresConnection, type Queryable, quoteIdent } from "./connection.js";

/** One step of the schema: applied once, in order, recorded in `schema_migrations`. */
export interface Migration {
  version: number;
  name: string;
  /** The statements, with `{schema}` standing for the quoted schema name. */
  sql: string;
}

/**
 * The schema, as versioned steps: append a step for every change, never edit
 * one that shipped. Everything lives in one schema of its own (`smcp` by
 * default), owned by the role that runs the steps; no extension and no
 * superuser. Times are milliseconds since the epoch (`bigint`), set by the
 * smcp processes; JSON columns hold smcp's canonical text, so integers past
 * 2^53 stay exact. `smcp migrate --store URL --print` shows this SQL.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, replay cache, rate counters",
    sql: `
CREATE TABLE {schema}.jobs (
  id text PRIMARY KEY,
  client_id text NOT NULL,
  tool text NOT NULL,
  args text NOT NULL,
  idempotency_key text,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'error', 'cancelled')),
  progress text,
  result text,
  error text,
  attempts integer NOT NULL DEFAULT 0,
  worker_id text,
  lease_until bigint,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  expires_at bigint,
  version integer NOT NULL DEFAULT 1,
  turn bigint NOT NULL DEFAULT 1,
  bytes bigint NOT NULL DEFAULT 0,
  seq bigint GENERATED ALWAYS AS IDENTITY
);
COMMENT ON TABLE {schema}.jobs IS 'smcp jobs: one row per job until its retention (expires_at) passes and the sweep deletes it';
COMMENT ON COLUMN {schema}.jobs.turn IS 'fair-scheduling turn: queued jobs start lowest turn first, then oldest';
COMMENT ON COLUMN {schema}.jobs.lease_until IS 'while running: past it (ms) the worker is presumed dead and the job is requeued';
COMMENT ON COLUMN {schema}.jobs.version IS 'bumped by each change a poll shows (progress, the end): what a long poll compares';
CREATE UNIQUE INDEX jobs_idempotency ON {schema}.jobs (client_id, tool, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_client ON {schema}.jobs (client_id, created_at, seq);
CREATE INDEX jobs_created ON {schema}.jobs (created_at, seq);
CREATE INDEX jobs_expiry ON {schema}.jobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_fair ON {schema}.jobs (turn, created_at, seq) WHERE state = 'queued';
CREATE INDEX jobs_running ON {schema}.jobs (lease_until) WHERE state = 'running';

CREATE TABLE {schema}.clients (
  client_id text PRIMARY KEY,
  open integer NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  last_turn bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE {schema}.clients IS 'per-client quota use (open jobs, bytes held) and last fair turn; the row goes with the client''s last job';

CREATE TABLE {schema}.starts (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tool text NOT NULL,
  turn bigint NOT NULL
);
CREATE INDEX starts_tool ON {schema}.starts (tool, seq);
COMMENT ON TABLE {schema}.starts IS 'job starts (tool, turn), appended without a lock; per tool the latest is the turn it serves, the least a new job of it gets; the retention sweep prunes the rest';

CREATE TABLE {schema}.offers (
  tool text NOT NULL,
  worker_id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (tool, worker_id)
);
COMMENT ON TABLE {schema}.offers IS 'which live processes run which tools (renewed every few seconds), so a job no process takes says so';

CREATE TABLE {schema}.nonces (
  digest bytea PRIMARY KEY,
  expires_at bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02);
CREATE INDEX nonces_expiry ON {schema}.nonces (expires_at);
COMMENT ON TABLE {schema}.nonces IS 'replay cache: 16 bytes of SHA-256 of (client id, nonce), held until the envelope could no longer be fresh; expired rows are deleted in batches';

CREATE TABLE {schema}.rate_limits (
  key text PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);
COMMENT ON TABLE {schema}.rate_limits IS 'per-client request-rate counters (rate-limiter-flexible RateLimiterPostgres); rows expired an hour are deleted every 5 minutes';
`,
  },
  {
    version: 2,
    name: "jobs keep the trace context of the call that started them",
    sql: `
ALTER TABLE {schema}.jobs ADD COLUMN trace text;
COMMENT ON COLUMN {schema}.jobs.trace IS 'W3C traceparent of the call that started the job (SPEC §10), so its run joins that trace; null when none';
`,
  },
];

/** The schema version this smcp writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** The SQL of the steps past `from`, for one schema, as a DBA would run it (each step one transaction). */
export function migrationSql(schema: string, from = 0): string {
  const q = quoteIdent(schema);
  const steps = MIGRATIONS.filter((m) => m.version > from).map(
    (m) =>
      `-- ${m.version}: ${m.name}\nBEGIN;\n${m.sql.trim().replaceAll("{schema}", q)}\n` +
      `INSERT INTO ${q}.schema_migrations (version, name) VALUES (${m.version}, '${m.name.replaceAll("'", "''")}');\nCOMMIT;`,
  );
  return [
    `CREATE SCHEMA IF NOT EXISTS ${q};`,
    `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`,
    ...steps,
  ].join("\n\n");
}

/** Where a schema stands. */
export interface MigrationStatus {
  schema: string;
  /** The version before (0: a new schema). */
  from: number;
  /** The version now. */
  to: number;
  /** The steps this call applied. */
  applied: number[];
}

/**
 * Brings a schema to {@link SCHEMA_VERSION}: creates it if missing (which
 * needs CREATE on the database; a DBA may create it beforehand, `CREATE
 * SCHEMA smcp AUTHORIZATION app_role`, and then the app role needs nothing
 * on the database), then applies each missing step in a transaction of its
 * own. Processes starting at once take turns (an advisory lock), so a step
 * runs once. With `apply: false`, only reads where the schema stands.
 * Refuses a schema written by a newer smcp.
 */
export async function migrate(
  connection: PostgresConnection,
  schema: string,
  options: { apply?: boolean } = {},
): Promise<MigrationStatus> {
  const q = quoteIdent(schema);
  const from = await currentVersion(connection, schema);
  const status: MigrationStatus = { schema, from, to: from, applied: [] };
  if (from > SCHEMA_VERSION) {
    throw new SmcpUsageError(
      `schema ${schema} is at version ${from}, written by a newer smcp (this one knows up to ${SCHEMA_VERSION}); upgrade smcp`,
    );
  }
  if (from === SCHEMA_VERSION || options.apply === false) return status;
  try {
    // Processes starting at once take turns here (CREATE ... IF NOT EXISTS races with itself).
    // A step may take long on a big table, and waiting for another process's step is expected: no statement timeout.
    const lock = async (client: Queryable) => {
      await client.query("SET LOCAL statement_timeout = 0");
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [advisoryKey(`smcp-migrate:${schema}`)]);
    };
    await connection.transaction(async (client) => {
      await lock(client);
      // Only when missing: CREATE SCHEMA IF NOT EXISTS still asks for CREATE on the database.
      const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${q}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
    });
    for (const step of MIGRATIONS) {
      if (step.version <= from) continue;
      const applied = await connection.transaction(async (client) => {
        await lock(client);
        // Another process may have applied it while we waited for the lock.
        const done = await client.query(`SELECT 1 FROM ${q}.schema_migrations WHERE version = $1`, [step.version]);
        if (done.rowCount !== 0) return false;
        await client.query(step.sql.replaceAll("{schema}", q));
        await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [step.version, step.name]);
        return true;
      });
      if (applied) status.applied.push(step.version);
      status.to = step.version;
    }
  } catch (error) {
    if (error instanceof SmcpUsageError) throw error;
    const code = (error as { code?: string }).code;
    // 42501: insufficient privilege.
    const hint =
      code === "42501"
        ? `; the role needs CREATE on the database, or a schema it owns (CREATE SCHEMA ${schema} AUTHORIZATION <role>), or run \`smcp migrate --store URL\` as a role that has it`
        : "";
    throw new SmcpUsageError(`cannot migrate schema ${schema} to version ${SCHEMA_VERSION}: ${(error as Error).message}${hint}`);
  }
  return status;
}

/** The schema's version: 0 when it (or its `schema_migrations` table) does not exist yet. */
export async function currentVersion(connection: PostgresConnection, schema: string): Promise<number> {
  const table = await connection.pool.query("SELECT to_regclass($1) AS t", [`${quoteIdent(schema)}.schema_migrations`]);
  if (table.rows[0]?.t === null) return 0;
  const row = await connection.pool.query(`SELECT coalesce(max(version), 0) AS v FROM ${quoteIdent(schema)}.schema_migrations`);
  return Number(row.rows[0]?.v ?? 0);
}
