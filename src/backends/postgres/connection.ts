import { createHash } from "node:crypto";
import pg from "pg";
import { SmcpUsageError } from "../../protocol/errors.js";
import { redactUrl } from "../../util/redact.js";

/** A PostgreSQL store URL, split into what node-postgres takes and smcp's own parameters. */
export interface PostgresTarget {
  /** `postgres://USER[:PASSWORD]@HOST:PORT/DB[?libpq parameters]`, without smcp's parameters. */
  url: string;
  /** The schema smcp's tables live in (`?schema=`; default `smcp`). */
  schema: string;
  /** Connections in the pool at most (`?pool_max=`; default 10). */
  poolMax: number;
}

/** The schema a URL without `?schema=` uses. */
export const DEFAULT_SCHEMA = "smcp";

// Lower case, so the name means the same quoted or not; short enough that `<schema>_events` (the NOTIFY
// channel) stays within PostgreSQL's 63-byte identifiers.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

/** Parses `postgres://USER@HOST:PORT/DB[?schema=NAME][&pool_max=N]` (also `postgresql://`). */
export function parsePostgresUrl(text: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SmcpUsageError("the PostgreSQL store URL is malformed; use postgres://USER@HOST:PORT/DB[?schema=NAME]");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new SmcpUsageError("the PostgreSQL store URL must start with postgres:// or postgresql://");
  }
  const schema = url.searchParams.get("schema") ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw new SmcpUsageError(`schema '${schema}' is not allowed: use lower-case letters, digits and _ (at most 48)`);
  }
  const poolText = url.searchParams.get("pool_max") ?? "10";
  const poolMax = Number(poolText);
  if (!Number.isSafeInteger(poolMax) || poolMax < 1 || poolMax > 1000) {
    throw new SmcpUsageError(`pool_max '${poolText}' must be an integer from 1 to 1000`);
  }
  url.searchParams.delete("schema");
  url.searchParams.delete("pool_max");
  return { url: url.toString(), schema, poolMax };
}

/** `"name"`, quoted for SQL. */
export const quoteIdent = (name: string): string => pg.escapeIdentifier(name);

/** A 64-bit advisory-lock key (as text, for `$1::bigint`) that every process derives alike from a name. */
export function advisoryKey(name: string): string {
  return createHash("sha256").update(name).digest().readBigInt64BE(0).toString();
}

/** What runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.ClientBase, "query">;

/** A connection shared by the stores of one URL; see {@link PostgresConnection.open}. */
export interface PostgresConnectionOptions {
  /** Connections at most. Default 10. */
  poolMax?: number;
  /** Shown in `pg_stat_activity.application_name` (so an operator sees whose sessions they are). Default `smcp`. */
  applicationName?: string;
  /** Sees connection errors, once per outage. */
  onError?: (error: Error) => void;
}

/** Notifications of one channel, to a subscriber. */
export interface ChannelSubscriber {
  /** A `NOTIFY` on the channel, with its payload. */
  message(payload: string): void;
  /**
   * The LISTEN connection dropped, or came back: notifications may have been
   * missed meanwhile, so whatever waits on them should look again.
   */
  lost(): void;
}

// bigint columns (times in ms, counters) as numbers: every value smcp stores is below 2^53.
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * A pool of connections to one PostgreSQL database, and one more connection
 * that LISTENs for the channels the stores subscribe to. It fails fast: with
 * the server down or refusing us, a query rejects within the connect timeout
 * (the server then answers `unavailable`), and the pool reconnects on the
 * next query, so service resumes by itself. Reference-counted: the stores
 * opened from one URL share it, and it ends when the last one closes it.
 */
export class PostgresConnection {
  readonly pool: pg.Pool;
  readonly #options: PostgresConnectionOptions;
  #counters: pg.Pool | undefined;
  readonly #clientConfig: pg.ClientConfig;
  readonly #channels = new Map<string, Set<ChannelSubscriber>>();
  // Per channel: done once the LISTEN connection listens on it.
  readonly #ready = new Map<string, Promise<void>>();
  #listener: Promise<pg.Client> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryMs = 100;
  #refs = 1;
  #closed = false;
  #reported = false;

  private constructor(url: string, options: PostgresConnectionOptions) {
    this.#options = options;
    this.#clientConfig = {
      connectionString: url,
      application_name: options.applicationName ?? "smcp",
      // Fail fast: a request waits at most this long for a connection before it answers unavailable.
      connectionTimeoutMillis: 5000,
      // A peer that vanished (no RST) is noticed, rather than a query waiting on it forever.
      keepAlive: true,
      // A statement stuck behind someone else's lock (a DBA's ALTER TABLE) fails, and its request answers
      // unavailable, rather than hanging; smcp's own statements take milliseconds. `?statement_timeout=` overrides.
      statement_timeout: 15_000,
      idle_in_transaction_session_timeout: 15_000,
      types: TYPES,
    };
    this.pool = new pg.Pool({ ...this.#clientConfig, max: options.poolMax ?? 10, idleTimeoutMillis: 30_000 });
    // An idle connection the server ended (restart, pg_terminate_backend) emits here; unhandled, it would end the process.
    this.pool.on("error", (error) => this.#report(error));
    this.pool.on("connect", () => {
      this.#reported = false;
    });
  }

  /** Connects to `url` (checking that the server answers); throws a usage error naming the URL when it cannot. */
  static async open(url: string, options: PostgresConnectionOptions = {}): Promise<PostgresConnection> {
    const connection = new PostgresConnection(url, options);
    try {
      await connection.pool.query("SELECT 1");
    } catch (error) {
      await connection.pool.end().catch(() => undefined);
      throw new SmcpUsageError(`cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`);
    }
    return connection;
  }

  /**
   * A second, small pool (opened on first use) whose commits do not wait for
   * the WAL to reach the disk (`synchronous_commit = off`): for counters a
   * server crash may roll back the last fraction of a second of without
   * harm (request-rate counters), and that are written on every request, so
   * that each write neither waits for an fsync nor holds its row lock
   * through one. Never for jobs or the replay cache.
   */
  get countersPool(): pg.Pool {
    if (!this.#counters) {
      const pool = new pg.Pool({ ...this.#clientConfig, max: 2, idleTimeoutMillis: 30_000 });
      pool.on("error", (error) => this.#report(error));
      // Runs before any query of the new connection (node-postgres queues queries behind it).
      pool.on("connect", (client) => {
        client.query("SET synchronous_commit = off").catch(() => undefined);
      });
      this.#counters = pool;
    }
    return this.#counters;
  }

  /** One more owner: the connection ends when every owner has called {@link close}. */
  retain(): this {
    this.#refs++;
    return this;
  }

  /**
   * Runs `work` in a transaction on one connection: COMMIT when it resolves,
   * ROLLBACK when it throws (the error is rethrown). A connection that broke
   * meanwhile is discarded, not returned to the pool.
   */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // While checked out a client has no listener of the pool's: a session ended between two statements
    // (pg_terminate_backend) would emit an unhandled 'error' and end the process.
    const lost = (error: Error) => {
      broken = error;
      this.#report(error);
    };
    client.on("error", lost);
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch (rollback) {
        broken = rollback as Error;
      }
      throw error;
    } finally {
      client.off("error", lost);
      client.release(broken);
    }
  }

  /**
   * Subscribes to a NOTIFY channel. The LISTEN connection opens (or comes
   * back) in the background and listens on every subscribed channel;
   * {@link listening} waits for it. Returns the unsubscribe.
   */
  subscribe(channel: string, subscriber: ChannelSubscriber): () => Promise<void> {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      this.#listenOn(channel);
    }
    set.add(subscriber);
    return async () => {
      const left = this.#channels.get(channel);
      if (!left?.delete(subscriber) || left.size > 0) return;
      this.#channels.delete(channel);
      this.#ready.delete(channel);
      const client = await this.#listener?.catch(() => undefined);
      await client?.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
    };
  }

  /**
   * Resolves once the LISTEN connection is up and listens on `channel` (a
   * channel subscribed to); rejects when it cannot connect. Cheap when it is up.
   */
  async listening(channel: string): Promise<void> {
    await this.#listen();
    const ready = this.#ready.get(channel);
    if (!ready) return;
    await ready.catch(() => this.#listenOn(channel));
  }

  // LISTEN on one channel once the connection is up (again LISTEN on a channel already listened is harmless).
  #listenOn(channel: string): Promise<void> {
    const ready = this.#listen().then(async (client) => {
      await client.query(`LISTEN ${quoteIdent(channel)}`);
    });
    ready.catch(() => undefined); // seen by listening(); the connection retries by itself
    this.#ready.set(channel, ready);
    return ready;
  }

  /** Gives up one owner's hold; the last one ends the pool and the LISTEN connection. */
  async close(): Promise<void> {
    if (this.#refs === 0) return;
    if (--this.#refs > 0) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    const listener = this.#listener;
    this.#listener = undefined;
    const client = await listener?.catch(() => undefined);
    await client?.end().catch(() => undefined);
    await this.#counters?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  #report(error: Error): void {
    if (!this.#reported) this.#options.onError?.(error);
    this.#reported = true;
  }

  // The LISTEN connection, opened on first use and again after it drops.
  #listen(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error("the PostgreSQL connection is closed"));
    this.#listener ??= this.#connectListener().catch((error: unknown) => {
      this.#listener = undefined;
      this.#scheduleRetry();
      throw error;
    });
    return this.#listener;
  }

  async #connectListener(): Promise<pg.Client> {
    const client = new pg.Client(this.#clientConfig);
    let up = false;
    const dropped = (error?: Error) => {
      if (error) this.#report(error);
      if (!up) return;
      up = false;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      this.#wakeAll();
      this.#scheduleRetry();
    };
    client.on("error", dropped);
    client.on("end", () => dropped());
    client.on("notification", (message) => {
      for (const subscriber of [...(this.#channels.get(message.channel) ?? [])]) subscriber.message(message.payload ?? "");
    });
    try {
      await client.connect();
      // One round trip for every channel subscribed before (or during) a reconnect.
      const channels = [...this.#channels.keys()];
      if (channels.length > 0) await client.query(channels.map((c) => `LISTEN ${quoteIdent(c)}`).join("; "));
      for (const channel of channels) this.#ready.set(channel, Promise.resolve());
    } catch (error) {
      client.end().catch(() => undefined);
      throw error;
    }
    up = true;
    this.#retryMs = 100;
    this.#reported = false;
    // Back (or up for the first time): anything sent while nobody listened is looked for again.
    this.#wakeAll();
    return client;
  }

  #wakeAll(): void {
    for (const set of this.#channels.values()) for (const subscriber of [...set]) subscriber.lost();
  }

  // While someone is subscribed, the LISTEN connection comes back by itself (backing off to 2 s).
  #scheduleRetry(): void {
    if (this.#closed || this.#channels.size === 0 || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#listen().catch(() => undefined);
    }, this.#retryMs);
    this.#retry.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, 2000);
  }
}
