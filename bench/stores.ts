import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import pg from "pg";
import { fetchMetrics, metricValue } from "./smcp.js";

/** The stores a bench can run `smcp serve` on. */
export type StoreKind = "memory" | "sqlite" | "redis" | "postgres";

/** A store for one bench server: its URL, and how to read what it holds from outside the server. */
export interface BenchStore {
  kind: StoreKind;
  /** For `smcp serve --store`. */
  url: string;
  /** Call once the server listens and before any load: records what an idle server holds. */
  baseline(origin: string): Promise<void>;
  /** Nonces held now, read without the server's help where possible; undefined when it cannot be read. */
  noncesHeld(origin: string): Promise<number | undefined>;
  /** Lines describing the store's own bytes per held nonce (end of a soak). */
  footprint(held: number | undefined): Promise<string[]>;
  /** Deletes the files or keys the bench made. */
  cleanup(): Promise<void>;
  /** The pid of the store's own server process when it runs on this machine (Redis), to count its CPU. */
  serverPid?: number | undefined;
}

/** Options for {@link openBenchStore}. */
export interface BenchStoreOptions {
  /** Redis: the database number; default the highest empty one, so DBSIZE counts only this bench's keys. */
  redisDb?: number;
  redisHost?: string;
  /** PostgreSQL: the database (a schema of the bench's own is made in it, and dropped). Default `SMCP_BENCH_POSTGRES` or the test database. */
  postgresUrl?: string;
}

/** The PostgreSQL the benches use, when not told otherwise. */
export const BENCH_POSTGRES = process.env.SMCP_BENCH_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

/** Opens a fresh store of a kind: a memory store, a SQLite file in a temporary folder, or a Redis database and prefix of its own. */
export async function openBenchStore(kind: StoreKind, options: BenchStoreOptions = {}): Promise<BenchStore> {
  if (kind === "memory") return memoryStore();
  if (kind === "sqlite") return sqliteStore();
  if (kind === "redis") return redisStore(options);
  if (kind === "postgres") return postgresStore(options);
  throw new Error(`unknown store ${kind}; use memory, sqlite, redis or postgres`);
}

/** Memory: only the server knows; it tells through the `smcp_nonces_held` gauge of `GET /metrics`, when it has one. */
function memoryStore(): BenchStore {
  return {
    kind: "memory",
    url: "memory",
    async baseline() {},
    async noncesHeld(origin) {
      const text = await fetchMetrics(origin);
      return text === undefined ? undefined : metricValue(text, "smcp_nonces_held");
    },
    async footprint() {
      return []; // the soak reports RSS growth per nonce for this store
    },
    async cleanup() {},
  };
}

/** SQLite: every table named like `nonce` and its indexes, read over a read-only connection of our own. */
function sqliteStore(): BenchStore {
  const dir = mkdtempSync(join(tmpdir(), "smcp-bench-"));
  const path = join(dir, "bench.db");
  const withDb = <T>(read: (db: Database.Database, tables: string[]) => T): T => {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%nonce%'")
        .pluck()
        .all() as string[];
      return read(db, tables);
    } finally {
      db.close();
    }
  };
  const count = () =>
    withDb((db, tables) =>
      tables.length === 0
        ? undefined
        : tables.reduce((n, t) => n + Number(db.prepare(`SELECT count(*) FROM "${t}"`).pluck().get()), 0),
    );
  return {
    kind: "sqlite",
    url: `sqlite:${path}`,
    async baseline() {},
    async noncesHeld() {
      return count();
    },
    async footprint() {
      const rows = count() ?? 0;
      const bytes = withDb((db, tables) => {
        const names = db
          .prepare(`SELECT name FROM sqlite_master WHERE tbl_name IN (${tables.map(() => "?").join(",") || "''"})`)
          .pluck()
          .all(...tables) as string[];
        return names.reduce(
          (n, name) => n + Number(db.prepare("SELECT sum(pgsize) FROM dbstat WHERE name = ?").pluck().get(name) ?? 0),
          0,
        );
      });
      const size = (suffix: string) => {
        try {
          return statSync(path + suffix).size;
        } catch {
          return 0;
        }
      };
      const per = (n: number) => (rows > 0 ? `${(n / rows).toFixed(0)} bytes per row` : "no rows");
      return [
        `SQLite: ${rows} nonce rows; nonce tables and their indexes ${mb(bytes)} MB (dbstat): ${per(bytes)}`,
        `SQLite: file ${mb(size(""))} MB + WAL ${mb(size("-wal"))} MB: ${per(size("") + size("-wal"))} (whole file / nonce rows)`,
      ];
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Redis: a database of its own (so DBSIZE, less the idle server's keys, counts nonces) and a fresh prefix. */
async function redisStore(options: BenchStoreOptions): Promise<BenchStore> {
  const host = options.redisHost ?? "127.0.0.1:6379";
  const db = options.redisDb ?? (await emptyRedisDb(host));
  const prefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;
  const redis = new Redis(`redis://${host}/${db}`);
  let idleKeys = 0;
  let idleMemory = 0;
  const usedMemory = async () => Number(/^used_memory:(\d+)/m.exec(await redis.info("memory"))?.[1] ?? 0);
  const serverPid = await localRedisPid(redis, host);
  return {
    kind: "redis",
    serverPid,
    url: `redis://${host}/${db}?prefix=${prefix}`,
    async baseline() {
      idleKeys = await redis.dbsize();
      idleMemory = await usedMemory();
    },
    async noncesHeld() {
      return (await redis.dbsize()) - idleKeys;
    },
    async footprint(held) {
      const sample = await sampleNonceKeys(redis, `${prefix}*nonce*`, 200);
      const lines = [];
      if (sample.keys > 0) {
        lines.push(
          `Redis: MEMORY USAGE of ${sample.keys} sampled nonce keys (${sample.types}): ${(sample.bytes / sample.nonces).toFixed(0)} bytes per nonce`,
        );
      } else {
        lines.push(`Redis: no key matching ${prefix}*nonce* found to sample`);
      }
      const grown = (await usedMemory()) - idleMemory;
      if (held)
        lines.push(`Redis: used_memory grew ${mb(grown)} MB for ${held} keys: ${(grown / held).toFixed(0)} bytes per key`);
      return lines;
    },
    async cleanup() {
      await deleteByPattern(redis, `${prefix}*`);
      redis.disconnect();
    },
  };
}

/**
 * PostgreSQL: a schema of its own (the server creates it at start, and the
 * bench drops it), read over a connection of the bench's own: the live rows
 * of the nonce table, and the table's and its indexes' sizes.
 */
function postgresStore(options: BenchStoreOptions): BenchStore {
  const base = options.postgresUrl ?? BENCH_POSTGRES;
  const schema = `smcp_bench_${randomUUID().slice(0, 8)}`;
  const query = async <T>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: base, application_name: "smcp-bench" });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  };
  const rows = async () => {
    const [row] = await query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".nonces WHERE expires_at > $1`, [Date.now()]);
    return Number(row?.n ?? 0);
  };
  return {
    kind: "postgres",
    url: `${base}${base.includes("?") ? "&" : "?"}schema=${schema}`,
    async baseline() {},
    async noncesHeld() {
      return rows().catch(() => undefined);
    },
    async footprint() {
      const live = await rows();
      const [size] = await query<{ heap: string; pkey: string; expiry: string; total: string; all_rows: string }>(
        `SELECT pg_relation_size('"${schema}".nonces') AS heap, pg_relation_size('"${schema}".nonces_pkey') AS pkey,
           pg_relation_size('"${schema}".nonces_expiry') AS expiry, pg_total_relation_size('"${schema}".nonces') AS total,
           (SELECT count(*) FROM "${schema}".nonces) AS all_rows`,
      );
      const [heap = 0, pkey = 0, expiry = 0, total = 0, all = 0] = [
        size?.heap,
        size?.pkey,
        size?.expiry,
        size?.total,
        size?.all_rows,
      ].map(Number);
      const per = (n: number) => (live > 0 ? `${(n / live).toFixed(0)} bytes per held nonce` : "no rows");
      return [
        `PostgreSQL: ${live} live nonce rows (${all} with expired ones not swept yet)`,
        `PostgreSQL: table ${mb(heap)} MB + primary key ${mb(pkey)} MB + expiry index ${mb(expiry)} MB = ${mb(total)} MB (pg_total_relation_size): ${per(total)}`,
      ];
    },
    async cleanup() {
      await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

/** The highest-numbered empty Redis database, so a bench never counts or deletes keys it did not make. */
async function emptyRedisDb(host: string): Promise<number> {
  const redis = new Redis(`redis://${host}/0`);
  try {
    const databases = Number(((await redis.config("GET", "databases")) as string[])[1] ?? 16);
    const keyspace = await redis.info("keyspace");
    for (let db = databases - 1; db > 0; db--) if (!new RegExp(`^db${db}:`, "m").test(keyspace)) return db;
    throw new Error("no empty Redis database; pass --redis-db N");
  } finally {
    redis.disconnect();
  }
}

/** MEMORY USAGE of up to `limit` keys matching `pattern`, with the nonces each holds (1 for a string, the members of a hash, set or sorted set). */
async function sampleNonceKeys(redis: Redis, pattern: string, limit: number) {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0" && found.length < limit);
  let bytes = 0;
  let nonces = 0;
  const types = new Set<string>();
  for (const key of found.slice(0, limit)) {
    const type = await redis.type(key);
    types.add(type);
    bytes += Number(await redis.memory("USAGE", key, "SAMPLES", "0"));
    const size: Record<string, () => Promise<number>> = {
      hash: () => redis.hlen(key),
      set: () => redis.scard(key),
      zset: () => redis.zcard(key),
    };
    nonces += size[type] ? await (size[type] as () => Promise<number>)() : 1;
  }
  return { keys: Math.min(found.length, limit), bytes, nonces, types: [...types].join(", ") };
}

/** Deletes every key matching `pattern`, in batches (UNLINK frees memory off the main thread). */
export async function deleteByPattern(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 5000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/**
 * The pid of the redis-server behind `redis` when it runs on this machine (`host` on loopback), to count or
 * pin its CPU; undefined otherwise.
 */
export async function localRedisPid(redis: Redis, host: string): Promise<number | undefined> {
  // Loopback only: a Redis elsewhere has a pid on another machine, and its CPU cannot be read here.
  if (!/^(127\.|localhost|\[?::1)/.test(host)) return undefined;
  const pid = Number(/^process_id:(\d+)/m.exec(await redis.info("server"))?.[1]);
  if (!pid) return undefined;
  // A Redis in a container reports a pid of its own namespace: trust it only if it names redis-server here.
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("redis-server") ? pid : undefined;
  } catch {
    return undefined;
  }
}
