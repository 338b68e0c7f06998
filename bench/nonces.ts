// Replay caches, store by store, without HTTP: what a held nonce costs
// (bytes) and what a reservation costs (time, and its tail), at the default
// ±300 s window. The clock is simulated (memory, SQLite), so a steady state
// with a full window's worth of nonces is reached in seconds, not minutes.
//
// - memory: RSS, heap and ArrayBuffer growth over the held nonces (after a
//   full GC), and the cache's own byte count.
// - sqlite: the replay table's and its index's pages (dbstat) per row, the
//   file per row, the latency of group-committed reservations at a given
//   concurrency while a window fills and then while the sweep deletes as
//   many as are reserved, and the time of one sweep batch.
// - redis: a redis-server of the bench's own (so nothing else moves its
//   memory): MEMORY USAGE of sampled keys, and used_memory growth per key.
// - postgres: a schema of the bench's own (dropped after): the table's and
//   its two indexes' sizes per row, group-committed reservations while a
//   window fills and then while the sweep deletes as many as are reserved
//   (simulated clock, as SQLite), and the time of one sweep batch.
//
//   node --expose-gc --import tsx bench/nonces.ts [--stores memory,sqlite,redis,postgres] [--held 1000000] [--concurrency 64]
//     [--sweep-batch 100] [--maintenance-thread true|false] [--checkpoint-ms 1000] [--postgres URL]
//     [--sqlite-writers 2: in the steady phase a second store on the same file (its own connection and maintenance
//      thread, as a second `serve --workers` process has) takes half the reservations; CPU per reservation is then
//      both stores' together]
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { MemoryNonceStore, type NonceStore } from "../src/index.js";
import { migrate, PostgresConnection, PostgresNonceStore } from "../src/postgres.js";
import { RedisNonceStore } from "../src/redis.js";
import { SqliteNonceStore } from "../src/sqlite.js";
import { dropSchemas } from "../test/postgres-helpers.js";
import { BENCH_POSTGRES } from "./stores.js";

const { values } = parseArgs({
  options: {
    stores: { type: "string", default: "memory,sqlite,redis" },
    held: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "64" },
    "sweep-batch": { type: "string", default: "100" },
    // SQLite: the maintenance thread (sweep, checkpoints) and its checkpoint period; "false" for neither.
    "maintenance-thread": { type: "string", default: "true" },
    "checkpoint-ms": { type: "string", default: "1000" },
    postgres: { type: "string", default: BENCH_POSTGRES },
    "sqlite-writers": { type: "string", default: "1" },
  },
});
const HELD = Number(values.held);
const CONCURRENCY = Number(values.concurrency);
const WINDOW_MS = 300_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
/** Memory after full collections (ArrayBuffer backing stores are freed by a sweeper after the GC: give it a moment). */
const memory = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage();
};

/** Milliseconds: p50, p99, max of a sample. */
function percentiles(samples: Float64Array | number[]): string {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return `p50 ${at(0.5).toFixed(3)} ms, p99 ${at(0.99).toFixed(3)} ms, max ${(sorted[sorted.length - 1] ?? 0).toFixed(3)} ms`;
}

/**
 * Reserves unique nonces as a server would at `rate` a second of simulated
 * clock (ts_ms within ±2 s of it, so expiry ≈ now + 300 s), `CONCURRENCY` at
 * a time, for `seconds` of clock. Returns each reservation's latency (ms).
 */
async function drive(
  store: NonceStore,
  clock: { now: number },
  rate: number,
  seconds: number,
  latencies = new Float64Array(Math.round(rate * seconds)),
): Promise<Float64Array> {
  const total = latencies.length;
  const client = "bench-client";
  for (let done = 0; done < total; ) {
    const n = Math.min(CONCURRENCY, total - done);
    const batch: Promise<void>[] = [];
    for (let k = 0; k < n; k++) {
      const i = done + k;
      clock.now += 1000 / rate;
      const skew = ((i * 7919) % 4001) - 2000;
      const t0 = performance.now();
      batch.push(
        store.reserve(client, randomUUID(), clock.now + skew + WINDOW_MS + 1).then((won) => {
          if (!won) throw new Error("a unique nonce was refused");
          latencies[i] = performance.now() - t0;
        }),
      );
    }
    await Promise.all(batch);
    done += n;
  }
  return latencies;
}

async function benchMemory(): Promise<void> {
  // Enough clock for a steady state: a full window plus two buckets, at the rate that holds HELD.
  const rate = Math.ceil(HELD / WINDOW_MS) * 1000;
  const clock = { now: 1_700_000_000_000 };
  // Allocated before the first sample: only the cache's growth is measured.
  const latencies = new Float64Array(rate * 420).fill(-1); // written now, so its pages are in the first RSS sample
  const before = await memory();
  const store = new MemoryNonceStore({ now: () => clock.now });
  const t0 = performance.now();
  await drive(store, clock, rate, 420, latencies);
  const wall = (performance.now() - t0) / 1000;
  const after = await memory();
  const stats = store.stats();
  const per = (delta: number) => (delta / stats.held).toFixed(1);
  console.log(`\n### memory: ${latencies.length} reservations, ${rate}/s of simulated clock for 420 s\n`);
  console.log(`- held ${stats.held} (cache bytes ${mb(stats.bytes ?? 0)} MB: ${per(stats.bytes ?? 0)} bytes per held nonce)`);
  console.log(`- RSS ${mb(before.rss)} -> ${mb(after.rss)} MB: ${per(after.rss - before.rss)} bytes per held nonce`);
  console.log(
    `- heap used ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB: ${per(after.heapUsed - before.heapUsed)} bytes per held nonce ` +
      `(heap reserved ${mb(before.heapTotal)} -> ${mb(after.heapTotal)} MB); ` +
      `ArrayBuffers ${mb(before.arrayBuffers)} -> ${mb(after.arrayBuffers)} MB: ${per(after.arrayBuffers - before.arrayBuffers)}`,
  );
  console.log(
    `- reserve: ${((wall * 1e6) / latencies.length).toFixed(2)} µs each (wall, in batches of ${CONCURRENCY}); ${percentiles(latencies)}`,
  );
  await store.close();
}

async function benchSqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "smcp-bench-nonces-"));
  const path = join(dir, "nonces.db");
  const thread = values["maintenance-thread"] !== "false";
  try {
    const clock = { now: 1_700_000_000_000 };
    const store = new SqliteNonceStore(path, {
      now: () => clock.now,
      sweepEveryMs: 100,
      sweepBatch: Number(values["sweep-batch"]),
      maintenanceThread: thread,
      checkpointEveryMs: Number(values["checkpoint-ms"]),
    });
    // A window's worth at this rate is HELD rows.
    const rate = Math.ceil((HELD / WINDOW_MS) * 1000);
    // 1. Fill: a window's worth, none expired yet (expiry is 300 s ± 2 s out).
    let t0 = performance.now();
    const fill = await drive(store, clock, rate, WINDOW_MS / 1000 - 2);
    const fillWall = (performance.now() - t0) / 1000;
    const db = new Database(path, { readonly: true });
    const count = () => Number(db.prepare("SELECT count(*) FROM smcp_nonce_digests").pluck().get());
    const rows = count();
    const pages = (name: string) => Number(db.prepare("SELECT sum(pgsize) FROM dbstat WHERE name = ?").pluck().get(name) ?? 0);
    const table = pages("smcp_nonce_digests");
    const index = pages("smcp_nonce_digests_expiry");
    // 2. Steady state: as many expire, and are swept, as are reserved; with --sqlite-writers 2, by two stores on
    // the file, each at half the rate (their commits take turns, as two processes' do).
    const writers = Number(values["sqlite-writers"]);
    if (writers !== 1 && writers !== 2) throw new Error("--sqlite-writers is 1 or 2");
    const second =
      writers === 2
        ? new SqliteNonceStore(path, {
            now: () => clock.now,
            sweepEveryMs: 100,
            sweepBatch: Number(values["sweep-batch"]),
            maintenanceThread: thread,
            checkpointEveryMs: Number(values["checkpoint-ms"]),
          })
        : undefined;
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    // Each store takes half the reservations; both advance the one clock at the full rate, so the phase is 120 s of
    // it either way.
    const half = () => new Float64Array(Math.round(rate * 60));
    const steady = second
      ? await Promise.all([drive(store, clock, rate, 120, half()), drive(second, clock, rate, 120, half())]).then(([a, b]) => {
          const both = new Float64Array(a.length + b.length);
          both.set(a);
          both.set(b, a.length);
          return both;
        })
      : await drive(store, clock, rate, 120);
    const cpu = process.cpuUsage(cpu0);
    const steadyWall = (performance.now() - t0) / 1000;
    await second?.close();
    const rowsAfter = count();
    db.close();
    const size = (suffix: string) => {
      try {
        return statSync(path + suffix).size;
      } catch {
        return 0;
      }
    };
    const upkeep = thread
      ? `sweep and checkpoints (every ${values["checkpoint-ms"]} ms) in the maintenance thread`
      : "sweep on the store's connection, SQLite's own checkpoints in commits";
    console.log(`\n### sqlite: ${rows} rows, group commit at concurrency ${CONCURRENCY}, ${upkeep}\n`);
    console.log(
      `- table ${mb(table)} MB + expiry index ${mb(index)} MB (dbstat): ${(table / rows).toFixed(1)} + ${(index / rows).toFixed(1)} = ` +
        `**${((table + index) / rows).toFixed(1)} bytes per row**; file ${mb(size(""))} MB + WAL ${mb(size("-wal"))} MB`,
    );
    const lastOfFill = fill.subarray(Math.max(0, fill.length - steady.length));
    console.log(
      `- reserve, last 120 s of the fill (nothing expires): ${(fill.length / fillWall).toFixed(0)}/s over the fill; ${percentiles(lastOfFill)}`,
    );
    console.log(
      `- reserve, next 120 s (as many expiring as reserved${second ? ", two stores on the file" : ""}): ${(steady.length / steadyWall).toFixed(0)}/s; ${percentiles(steady)}; rows ${rows} -> ${rowsAfter}`,
    );
    console.log(
      `- CPU per reservation in those 120 s (this process, maintenance threads included): ${((cpu.user + cpu.system) / steady.length).toFixed(1)} µs, ` +
        `${((100 * cpu.system) / (cpu.user + cpu.system)).toFixed(0)}% of it in the kernel; the sweep deleted ${rows + steady.length - rowsAfter} rows ` +
        `(as many as were reserved when it keeps up)`,
    );
    // 3. What one sweep batch costs the connection that runs it: every row expired, batches timed one by one.
    clock.now += 2 * WINDOW_MS;
    const batches: number[] = [];
    for (let deleted = -1; deleted !== 0; ) {
      const t = performance.now();
      deleted = store.sweep(1);
      if (deleted > 0) batches.push(performance.now() - t);
    }
    console.log(`- one sweep batch of ${values["sweep-batch"]} rows (${batches.length} timed): ${percentiles(batches)}`);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchRedis(): Promise<void> {
  const port = await freePort();
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const redis = new Redis(`redis://127.0.0.1:${port}/0`, { lazyConnect: true, retryStrategy: () => 50 });
  redis.on("error", () => {}); // refused until the server listens; the ping loop below waits for it
  try {
    for (let tries = 0; (await redis.ping().catch(() => "")) !== "PONG"; tries++) {
      if (tries > 100) throw new Error("redis-server did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
    const used = async () => Number(/^used_memory:(\d+)/m.exec(await redis.info("memory"))?.[1]);
    const before = await used();
    const store = new RedisNonceStore(redis, { prefix: "smcp:" });
    const clock = { now: Date.now() };
    const rate = 10_000;
    const t0 = performance.now();
    // The real clock: Redis counts the TTL down itself. Expiries are 300 s out, past the bench's end.
    const latencies = await drive(store, clock, rate, HELD / rate);
    const wall = (performance.now() - t0) / 1000;
    const keys = await redis.dbsize();
    const grown = (await used()) - before;
    const sample: number[] = [];
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "COUNT", 1000);
      for (const key of found.slice(0, 1000 - sample.length))
        sample.push(Number(await redis.memory("USAGE", key, "SAMPLES", "0")));
      cursor = next;
    } while (cursor !== "0" && sample.length < 1000);
    const usage = sample.reduce((a, b) => a + b, 0) / sample.length;
    const example = store.key("bench-client", randomUUID());
    console.log(`\n### redis: ${keys} keys (a redis-server of the bench's own), concurrency ${CONCURRENCY}\n`);
    console.log(`- key: \`${example}\` (${example.length} bytes)`);
    console.log(`- MEMORY USAGE (1000 sampled keys): **${usage.toFixed(1)} bytes per key**`);
    console.log(`- used_memory ${mb(before)} -> ${mb(before + grown)} MB: **${(grown / keys).toFixed(1)} bytes per key**`);
    console.log(`- reserve: ${(keys / wall).toFixed(0)}/s; ${percentiles(latencies)} (one SET NX PX round trip)`);
    await store.close();
  } finally {
    redis.disconnect();
    server.kill("SIGKILL");
  }
}

async function benchPostgres(): Promise<void> {
  const connection = await PostgresConnection.open(values.postgres as string, { poolMax: 8, applicationName: "smcp-bench" });
  const schema = `smcp_bench_${randomUUID().slice(0, 8)}`;
  try {
    await migrate(connection, schema);
    const clock = { now: 1_700_000_000_000 };
    const sweepBatch = Math.max(1000, Number(values["sweep-batch"]));
    const store = new PostgresNonceStore(connection, { schema, now: () => clock.now, sweepEveryMs: 100, sweepBatch });
    const rate = Math.ceil((HELD / WINDOW_MS) * 1000);
    const size = async () => {
      const row = (
        await connection.pool.query(
          `SELECT pg_relation_size('${schema}.nonces') AS heap, pg_relation_size('${schema}.nonces_pkey') AS pkey,
             pg_relation_size('${schema}.nonces_expiry') AS expiry, (SELECT count(*) FROM ${schema}.nonces) AS n`,
        )
      ).rows[0] as { heap: number; pkey: number; expiry: number; n: number };
      return row;
    };
    // 1. Fill: a window's worth, none expired yet.
    let t0 = performance.now();
    const fill = await drive(store, clock, rate, WINDOW_MS / 1000 - 2);
    const fillWall = (performance.now() - t0) / 1000;
    const full = await size();
    // 2. Steady state: as many expire, and are swept (every 100 ms, in batches), as are reserved.
    t0 = performance.now();
    const steady = await drive(store, clock, rate, 120);
    const steadyWall = (performance.now() - t0) / 1000;
    const after = await size();
    const [version] = (await connection.pool.query("SHOW server_version")).rows as { server_version: string }[];
    console.log(
      `\n### postgres ${version?.server_version}: ${full.n} rows, group commit at concurrency ${CONCURRENCY} (synchronous_commit as the server has it)\n`,
    );
    const per = (bytes: number) => (bytes / full.n).toFixed(1);
    console.log(
      `- table ${mb(full.heap)} MB + primary key ${mb(full.pkey)} MB + expiry index ${mb(full.expiry)} MB: ` +
        `${per(full.heap)} + ${per(full.pkey)} + ${per(full.expiry)} = **${per(full.heap + full.pkey + full.expiry)} bytes per row**`,
    );
    const lastOfFill = fill.subarray(Math.max(0, fill.length - steady.length));
    console.log(
      `- reserve, last 120 s of the fill (nothing expires): ${(fill.length / fillWall).toFixed(0)}/s over the fill; ${percentiles(lastOfFill)}`,
    );
    console.log(
      `- reserve, next 120 s (as many swept as reserved): ${(steady.length / steadyWall).toFixed(0)}/s; ${percentiles(steady)}; ` +
        `rows ${full.n} -> ${after.n}; relations ${mb(full.heap + full.pkey + full.expiry)} -> ${mb(after.heap + after.pkey + after.expiry)} MB`,
    );
    // 3. One sweep batch, every row expired, timed one by one (the background sweep is stopped first).
    await store.close();
    clock.now += 2 * WINDOW_MS;
    const batches: number[] = [];
    const sweep = `DELETE FROM ${schema}.nonces WHERE digest IN
      (SELECT digest FROM ${schema}.nonces WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    for (let deleted = -1; deleted !== 0 && batches.length < 200; ) {
      const t = performance.now();
      deleted = (await connection.pool.query(sweep, [Math.floor(clock.now), sweepBatch])).rowCount ?? 0;
      if (deleted > 0) batches.push(performance.now() - t);
    }
    console.log(`- one sweep batch of ${sweepBatch} rows (${batches.length} timed): ${percentiles(batches)}`);
  } finally {
    await connection.close();
    await dropSchemas([schema], values.postgres as string);
  }
}

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => probe.once("listening", r));
  const { port } = probe.address() as { port: number };
  await new Promise((r) => probe.close(r));
  return port;
}

console.log(
  `node ${process.version}, sqlite ${new Database(":memory:").prepare("SELECT sqlite_version()").pluck().get()}, ${execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim()}`,
);
for (const kind of (values.stores as string).split(",")) {
  if (kind === "memory") await benchMemory();
  else if (kind === "sqlite") await benchSqlite();
  else if (kind === "redis") await benchRedis();
  else if (kind === "postgres") await benchPostgres();
  else throw new Error(`unknown store ${kind}; use memory, sqlite, redis or postgres`);
}
process.exit(0);
