import { SmcpUsageError } from "../protocol/errors.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { keyringPath, readKeyringFile } from "./config.js";
import type { CliIO } from "./io.js";

/** `smcp migrate --help`. */
export const MIGRATE_HELP = `usage: smcp migrate --store postgres://USER@HOST:PORT/DB[?schema=NAME] [--print | --check]

Brings a PostgreSQL store's schema to this smcp's version: creates the schema
and its tables on first run, then applies each missing step once, each in a
transaction of its own, recorded in SCHEMA.schema_migrations. \`smcp serve\`
and \`smcp worker\` do the same when they start; run this instead when the
role they use may not change the schema (a DBA applies it before a deploy).
No superuser is needed: the role needs CREATE on the database, or a schema
it owns (CREATE SCHEMA smcp AUTHORIZATION app_role).

  --store URL    the store (the schema: ?schema=NAME, default smcp)    SMCP_STORE
  --print        print the SQL of the missing steps (for psql) and change nothing
  --check        change nothing; exit 1 when steps are missing
  --config PATH  keyring file (for its store)                          SMCP_CONFIG

SQLite files bring themselves up to date when opened; memory and Redis have no schema.`;

/** `smcp migrate`. */
export async function migrateCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "migrate",
      help: MIGRATE_HELP,
      options: { store: { type: "string" }, print: { type: "boolean" }, check: { type: "boolean" }, config: { type: "string" } },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const store = flags.string("store") ?? io.env.SMCP_STORE ?? readKeyringFile(keyringPath(flags.string("config"), io.env))?.store;
  if (!store) throw new SmcpUsageError("missing store: pass --store postgres://USER@HOST:PORT/DB or set SMCP_STORE");
  if (!store.startsWith("postgres://") && !store.startsWith("postgresql://")) {
    io.out(`${redactUrl(store)}: nothing to migrate (SQLite files bring themselves up to date when opened)`);
    return 0;
  }
  if (flags.boolean("print") && flags.boolean("check")) throw new SmcpUsageError("--print and --check do not go together");
  // Loaded on use: only this command and a postgres:// store need pg.
  const { PostgresConnection, parsePostgresUrl } = await import("../backends/postgres/connection.js");
  const { currentVersion, migrate, migrationSql, SCHEMA_VERSION } = await import("../backends/postgres/migrations.js");
  const target = parsePostgresUrl(store);
  const connection = await PostgresConnection.open(target.url, { poolMax: 1, applicationName: "smcp migrate" });
  try {
    if (flags.boolean("print") || flags.boolean("check")) {
      const at = await currentVersion(connection, target.schema);
      if (flags.boolean("print")) {
        io.out(
          at >= SCHEMA_VERSION
            ? `-- schema ${target.schema} is at version ${at}: nothing to apply`
            : migrationSql(target.schema, at),
        );
        return 0;
      }
      io.out(`schema ${target.schema}: version ${at}, this smcp needs ${SCHEMA_VERSION}`);
      return at === SCHEMA_VERSION ? 0 : 1;
    }
    const status = await migrate(connection, target.schema);
    io.out(
      status.applied.length === 0
        ? `schema ${status.schema}: at version ${status.to}, nothing to do`
        : `schema ${status.schema}: version ${status.from} -> ${status.to} (applied ${status.applied.join(", ")})`,
    );
    return 0;
  } finally {
    await connection.close();
  }
}
