// Job cycles (SPEC §8, issue 13): start a job and wait for its result by
// long poll, on the memory, SQLite, Redis/BullMQ and PostgreSQL stores (in
// process: server.handle through a verifying client, `callAndWait`), beside
// raw BullMQ (queue.add -> worker -> job.waitUntilFinished(queueEvents)) on
// the same Redis, and on BullMQ's PostgreSQL backend, at the same concurrency,
// in one run. Then, across processes, the
// latency from a job's end to the waiting client's receipt: start on one
// `smcp serve --no-worker` replica, long poll on another, the job run by a
// separate `smcp worker` (the job's end is when its handler returned, on the
// host's monotonic clock that every process shares): on Redis (`latency`),
// PostgreSQL (`latency-postgres`) and a SQLite file (`latency-sqlite`). Also requests per job
// cycle. With --profile (and --private-redis: a Redis no one else uses), per
// cycle: Redis commands (INFO commandstats, script internals included), Redis
// and this process's CPU, and the round trips of one cycle (MONITOR, 20
// sequential cycles, scripts named).
//
// The cycles rows run interleaved: every way is set up (and warmed) first, then --rounds rounds each
// run every way once, so a shared machine's drift lands on all alike; a row is its median round, its
// ratio the median of the rounds' ratios to raw BullMQ in the same round. With --profile, the other ways
// stay open while one is measured: their idle BullMQ workers' blocking polls are in its Redis counts.
//
//   npm run build && node --import tsx bench/jobs.ts [--cycles 2000] [--rounds 3] [--concurrency 32]
//     [--latency-cycles 200] [--delay-ms 20] [--redis URL | --private-redis] [--profile]
//     [--only memory,sqlite,redis,postgres,raw,bullmq-postgres,latency,latency-postgres,latency-sqlite]
//     (also: redis-store, the Redis store as the queue: ?queue=store) [--postgres URL]
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createPostgresBackend, Queue, QueueEvents, Worker, withBackend } from "bullmq";
import { Redis } from "ioredis";
import { readLua, scripts } from "../src/backends/redis/scripts.js";
import {
  createClient,
  createServer,
  demoTools,
  httpTransport,
  inProcessTransport,
  type OpenedStores,
  type SmcpClient,
  type Transport,
} from "../src/index.js";
import { openStores } from "../src/stores.js";
import { dropSchemas } from "../test/postgres-helpers.js";
import { deleteKeys } from "../test/redis-helpers.js";
import { monotonicMicros } from "./clock-tools.js";
import { BENCH, noopJob } from "./fixtures.js";
import type { RunningPeer } from "./peer.js";
import { DEFAULT_SMCP, startSmcp } from "./smcp.js";
import { BENCH_POSTGRES } from "./stores.js";

const { values } = parseArgs({
  options: {
    cycles: { type: "string", default: "2000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "32" },
    "latency-cycles": { type: "string", default: "200" },
    "delay-ms": { type: "string", default: "20" },
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    "private-redis": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    only: {
      type: "string",
      default: "memory,sqlite,redis,postgres,raw,bullmq-postgres,latency,latency-postgres,latency-sqlite",
    },
    postgres: { type: "string", default: BENCH_POSTGRES },
  },
});
const CYCLES = Number(values.cycles);
const ROUNDS = Number(values.rounds);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1)) throw new Error("--rounds is a whole number from 1");
const CONCURRENCY = Number(values.concurrency);
const LATENCY_CYCLES = Number(values["latency-cycles"]);
const DELAY_MS = Number(values["delay-ms"]);
const ONLY = new Set(values.only.split(","));
const CLOCK_TOOLS = fileURLToPath(new URL("./clock-tools.ts", import.meta.url));
if (values.profile && !values["private-redis"])
  throw new Error("--profile counts every client of the Redis: add --private-redis");

/** A PostgreSQL URL with `?schema=` set (it may carry other parameters already). */
function withSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("schema", schema);
  return parsed.toString();
}

/** Runs `work` CYCLES times, CONCURRENCY at once; cycles per second. */
async function loop(work: () => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < CYCLES) await work();
    }),
  );
  return CYCLES / ((performance.now() - t0) / 1000);
}

/** Counts the requests a client sends. */
function counting(inner: Transport): { transport: Transport; count: () => number; reset: () => void } {
  let n = 0;
  return {
    transport: {
      send: (body, options) => {
        n++;
        return inner.send(body, options);
      },
    },
    count: () => n,
    reset: () => {
      n = 0;
    },
  };
}

/** What the Redis server has done so far: commands by name (INFO commandstats) and its CPU, µs. */
async function redisStats(url: string): Promise<{ commands: Map<string, number>; cpuUs: number }> {
  const redis = new Redis(url);
  try {
    const text = await redis.info("all");
    const commands = new Map<string, number>();
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands.set(match[1] as string, Number(match[2]));
    const cpu = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(text)?.[1] ?? 0);
    return { commands, cpuUs: (cpu("used_cpu_user") + cpu("used_cpu_sys")) * 1e6 };
  } finally {
    redis.disconnect();
  }
}

/** A measured pass with --profile: Redis commands and CPU, and this process's CPU, per cycle. */
async function profiled<T>(url: string | undefined, pass: () => Promise<T>): Promise<{ value: T; profile?: string }> {
  if (!values.profile) return { value: await pass() };
  const before = url ? await redisStats(url) : undefined;
  const cpu = process.cpuUsage();
  const value = await pass();
  const used = process.cpuUsage(cpu);
  const after = url ? await redisStats(url) : undefined;
  const mine = `this process ${((used.user + used.system) / CYCLES).toFixed(0)} µs CPU/cycle`;
  if (!before || !after) return { value, profile: mine };
  const rows: [string, number][] = [];
  for (const [name, calls] of after.commands) {
    const delta = calls - (before.commands.get(name) ?? 0) - (name === "info" ? 1 : 0);
    if (delta > 0) rows.push([name, delta / CYCLES]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, c]) => n + c, 0);
  const profile =
    `${mine}, Redis ${((after.cpuUs - before.cpuUs) / CYCLES).toFixed(0)} µs CPU/cycle; ` +
    `${total.toFixed(1)} Redis commands/cycle (inside scripts too): ${rows.map(([n, c]) => `${n} ${c.toFixed(2)}`).join(", ")}`;
  return { value, profile };
}

/** Names of the Lua scripts a Redis may run, by SHA-1 (smcp's and BullMQ's), for the round-trip count. */
function scriptNames(): Map<string, string> {
  const names = new Map<string, string>();
  const sha = (lua: string) => createHash("sha1").update(lua).digest("hex");
  for (const [name, script] of Object.entries(scripts())) names.set(sha(script.lua), `smcp ${name}`);
  names.set(sha(readLua("reserve")), "smcp reserve (replay cache)");
  names.set(sha(readLua("claim")), "smcp claim");
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve("bullmq")), "scripts");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".js"))) {
    const script = require(join(dir, file)) as Record<string, { name?: string; content?: string }>;
    for (const value of Object.values(script))
      if (value?.content && value.name) names.set(sha(value.content), `bullmq ${value.name}`);
  }
  return names;
}

/** The commands clients send in `cycles` sequential cycles (MONITOR; not what scripts run inside), per cycle. */
async function roundTrips(url: string, cycles: number, cycle: () => Promise<void>): Promise<string> {
  const names = scriptNames();
  const monitor = await new Redis(url).monitor();
  const other = new Redis(url);
  const seen = new Map<string, number>();
  let waiting: { marker: string; resolve: () => void } | undefined;
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (source === "lua") return;
    const command = String(args[0]).toLowerCase();
    if (command === "echo") {
      if (waiting && args[1] === waiting.marker) waiting.resolve();
      return;
    }
    const name = command === "evalsha" ? (names.get(String(args[1])) ?? "script ?") : command;
    seen.set(name, (seen.get(name) ?? 0) + 1);
  });
  // Every command sent before the fence has been reported once the fence is.
  const fence = () =>
    new Promise<void>((resolve) => {
      waiting = { marker: randomUUID(), resolve };
      void other.echo(waiting.marker);
    });
  await fence();
  seen.clear();
  for (let i = 0; i < cycles; i++) await cycle();
  await fence();
  monitor.disconnect();
  other.disconnect();
  const rows = [...seen].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, c]) => n + c, 0);
  return `${(total / cycles).toFixed(1)} round trips/cycle: ${rows.map(([n, c]) => `${n} ${(c / cycles).toFixed(2)}`).join(", ")}`;
}

interface Row {
  name: string;
  rate: number;
  /** The median of the rounds' ratios to raw BullMQ (interleaved ways only). */
  ratio?: number;
  requests?: number;
  profile?: string[];
}

/** One way of running job cycles, set up and warmed, run once per round. */
interface Way {
  name: string;
  cycle: () => Promise<void>;
  /** Requests sent since the last reset (smcp ways). */
  requests?: { count: () => number; reset: () => void };
  /** The Redis it uses, for --profile. */
  redisUrl?: string;
  close: () => Promise<void>;
}

async function smcpWay(name: string, stores: OpenedStores, redisUrl?: string, cleanup?: () => Promise<void>): Promise<Way> {
  const server = createServer({
    keyring: { serverId: "bench", serverSecrets: BENCH.serverSecret, clients: { bench: BENCH.clientSecret } },
    tools: [...demoTools, noopJob],
    jobStore: stores.jobStore,
    nonceStore: stores.nonceStore,
    jobConcurrency: CONCURRENCY,
    // The job cycle alone: no per-client request rate (a shared Redis limiter is one more round trip per request).
    limits: { rate: 0 },
    ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
  });
  const sent = counting(inProcessTransport(server));
  const client = createClient({
    clientId: "bench",
    clientSecret: BENCH.clientSecret,
    serverId: "bench",
    serverSecret: BENCH.serverSecret,
    transport: sent.transport,
  });
  const cycle = async () => {
    await client.callAndWait("noop_job", {});
  };
  await loop(cycle); // warm-up pass (and the capability, asked once)
  return {
    name,
    cycle,
    requests: sent,
    ...(redisUrl ? { redisUrl } : {}),
    close: async () => {
      await server.close();
      await cleanup?.();
    },
  };
}

async function rawBullWay(redisUrl: string): Promise<Way> {
  const prefix = `smcp-bench-${randomUUID().slice(0, 8)}`;
  const { hostname, port, pathname } = new URL(redisUrl);
  const connection = {
    host: hostname,
    port: Number(port || 6379),
    db: Number(pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
  const queue = new Queue("raw", { connection, prefix });
  queue.setMaxListeners(0); // many concurrent adds each wait on "closing"
  const events = new QueueEvents("raw", { connection, prefix });
  const worker = new Worker("raw", async () => ({}), { connection, prefix, concurrency: CONCURRENCY });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  const cycle = async () => {
    // Completed jobs are kept (the last 10,000): with removeOnComplete: true a job can finish and be
    // removed before waitUntilFinished looks at it ("Missing key ... isFinished").
    const job = await queue.add("noop", {}, { removeOnComplete: 10_000, removeOnFail: true });
    await job.waitUntilFinished(events);
  };
  await loop(cycle);
  return {
    name: RAW_BULL,
    cycle,
    redisUrl,
    close: async () => {
      await worker.close();
      await events.close();
      await queue.close();
      await deleteKeys(prefix, redisUrl);
    },
  };
}

const RAW_BULL = "raw BullMQ add + process + waitUntilFinished";

/** Runs every way once per round, interleaved; a row per way (median round; --profile: the last round's pass). */
async function interleaved(ways: Way[]): Promise<Row[]> {
  const rates = ways.map(() => [] as number[]);
  const ratios = ways.map(() => [] as number[]);
  const rows: Row[] = ways.map((way) => ({ name: way.name, rate: 0 }));
  const rawAt = ways.findIndex((way) => way.name === RAW_BULL);
  for (let round = 0; round < ROUNDS; round++) {
    const last = round === ROUNDS - 1;
    const inRound: number[] = [];
    for (const [i, way] of ways.entries()) {
      way.requests?.reset();
      const pass = () => loop(way.cycle);
      const { value: rate, profile } = last ? await profiled(way.redisUrl, pass) : { value: await pass(), profile: undefined };
      inRound.push(rate);
      rates[i]?.push(rate);
      const row = rows[i] as Row;
      if (way.requests) row.requests = way.requests.count() / CYCLES;
      if (profile) row.profile = way.redisUrl ? [profile, await roundTrips(way.redisUrl, 20, way.cycle)] : [profile];
      console.error(`round ${round + 1}: ${way.name}: ${rate.toFixed(0)} cycles/s`);
    }
    if (rawAt >= 0) for (const [i, rate] of inRound.entries()) ratios[i]?.push(rate / (inRound[rawAt] as number));
  }
  for (const [i, row] of rows.entries()) {
    row.rate = median(rates[i] as number[]);
    if (rawAt >= 0) row.ratio = median(ratios[i] as number[]);
  }
  return rows;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The same raw cycle on BullMQ's PostgreSQL backend (a schema of its own,
 * dropped after). A wait that gets no completion event within 2 s is counted
 * (and ends the cycle), so a lost event shows instead of hanging the bench.
 * Also: adds and processing alone (no waiting), the queue's own throughput.
 */
async function rawBullPostgresCycles(url: string): Promise<Row> {
  const schema = `smcp_bench_bull_${randomUUID().slice(0, 8)}`;
  const connection = { connectionString: url, schema, migrate: true };
  const bull = withBackend(createPostgresBackend);
  const queue = new bull.Queue("raw", { connection });
  queue.setMaxListeners(0);
  const events = new bull.QueueEvents("raw", { connection });
  let processed = 0;
  const worker = new bull.Worker(
    "raw",
    async () => {
      processed++;
      return {};
    },
    { connection, concurrency: CONCURRENCY },
  );
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
    let lost = 0;
    const cycle = async () => {
      const job = await queue.add("noop", {}, { removeOnComplete: 10_000, removeOnFail: true });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"lost">((resolve) => {
        timer = setTimeout(() => resolve("lost"), 2000);
      });
      if ((await Promise.race([job.waitUntilFinished(events), timeout])) === "lost") lost++;
      clearTimeout(timer);
    };
    await loop(cycle);
    lost = 0;
    const rate = await loop(cycle);
    const lostInRun = lost;
    // The queue alone: CYCLES adds at CONCURRENCY, until the worker has processed them all.
    const t0 = performance.now();
    const before = processed;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < CYCLES) await queue.add("noop", {}, { removeOnComplete: 10_000, removeOnFail: true });
      }),
    );
    while (processed - before < CYCLES) await new Promise((r) => setTimeout(r, 5));
    const queueRate = CYCLES / ((performance.now() - t0) / 1000);
    console.error(
      `raw BullMQ on PostgreSQL: ${rate.toFixed(0)} cycles/s (${lostInRun} waits lost), queue alone ${queueRate.toFixed(0)} jobs/s`,
    );
    return {
      name: "raw BullMQ (PostgreSQL backend) add + process + waitUntilFinished",
      rate,
      profile: [
        `${lostInRun} of ${CYCLES} waits got no completion event within 2 s (each counted as a 2 s cycle)`,
        `add + process alone (no waiting): ${queueRate.toFixed(0)} jobs/s`,
      ],
    };
  } finally {
    await worker.close();
    await events.close();
    await queue.close();
    await dropSchemas([schema], values.postgres).catch(() => undefined);
  }
}

/** `smcp worker` with the clock tools; resolves once it printed its ready line. */
async function startWorker(store: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      DEFAULT_SMCP,
      "worker",
      "--store",
      store,
      "--tools",
      CLOCK_TOOLS,
      "--log-level",
      "warn",
      "--config",
      "/nonexistent/keyring.json",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = once(child, "exit").then(() => {
    throw new Error("smcp worker exited before it was ready");
  });
  await Promise.race([once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), "line"), exited]);
  return child;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Sequential cycles across processes: start on replica A, long poll on
 * replica B from version 1, the job run by a worker process. Latency =
 * the client's receipt of B's answer minus the job handler's return.
 */
async function latencyAcrossProcesses(label: string, store: string, cleanup: () => Promise<void>): Promise<string> {
  const extra = ["--no-worker", "--tools", CLOCK_TOOLS, "--demo-tools", "--log-level", "warn", "--client-rate", "off"];
  const replicas: RunningPeer[] = [];
  let worker: ChildProcess | undefined;
  try {
    replicas.push(...(await Promise.all([startSmcp({ store, extra, cpu: 0 }), startSmcp({ store, extra, cpu: 1 })])));
    worker = await startWorker(store);
    const received: { at: number }[] = [];
    const clientOf = (url: string, mark?: boolean) => {
      const inner = httpTransport(`${url}/mcp`);
      const sent = counting({
        send: async (body, options) => {
          const answer = await inner.send(body, options);
          if (mark) received.push({ at: monotonicMicros() });
          return answer;
        },
      });
      const client: SmcpClient = createClient({
        clientId: "bench",
        clientSecret: BENCH.clientSecret,
        serverId: "bench",
        serverSecret: BENCH.serverSecret,
        transport: sent.transport,
      });
      return { client, sent };
    };
    const a = clientOf(replicas[0]?.url as string);
    const b = clientOf(replicas[1]?.url as string, true);
    if (!(await b.client.supportsLongPoll())) throw new Error("replica B does not advertise long_poll");
    const run = async (cycles: number) => {
      const latencies: number[] = [];
      let early = 0;
      a.sent.reset();
      b.sent.reset();
      for (let i = 0; i < cycles; i++) {
        const { job_id } = (await a.client.call("clock_job", { delay_ms: DELAY_MS })) as { job_id: string };
        const asked = monotonicMicros();
        const done = await b.client.waitForJob(job_id, { version: 1 });
        const ended = Number(done.result?.ended_us);
        const at = received.at(-1)?.at ?? Number.NaN;
        if (asked > ended)
          early++; // the job ended before the poll was sent: not a wake, left out
        else latencies.push((at - ended) / 1000);
      }
      return { latencies: latencies.sort((x, y) => x - y), early, requests: (a.sent.count() + b.sent.count()) / cycles };
    };
    await run(Math.min(20, LATENCY_CYCLES)); // warm-up
    const { latencies, early, requests } = await run(LATENCY_CYCLES);
    // For scale: one signed request's round trip to replica B (a sync call, nothing stored).
    const trips: number[] = [];
    for (let i = 0; i < LATENCY_CYCLES; i++) {
      const t0 = monotonicMicros();
      await b.client.call("batch_sum", { numbers: [1, 2] });
      trips.push((monotonicMicros() - t0) / 1000);
    }
    trips.sort((x, y) => x - y);
    const line =
      `${label}: job end -> client receipt across 2 replicas + a worker process (${latencies.length} cycles, job ${DELAY_MS} ms): ` +
      `p50 ${percentile(latencies, 50).toFixed(2)} ms, p90 ${percentile(latencies, 90).toFixed(2)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${(latencies.at(-1) ?? Number.NaN).toFixed(2)} ms; ` +
      `${requests.toFixed(2)} requests/cycle${early ? `; ${early} cycles left out (the job ended before the poll left)` : ""}` +
      `\n(for scale, a batch_sum round trip to replica B: p50 ${percentile(trips, 50).toFixed(2)} ms, p90 ${percentile(trips, 90).toFixed(2)} ms)`;
    console.error(line);
    return line;
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = once(worker, "exit");
      worker.kill("SIGTERM");
      await exited;
    }
    await Promise.all(replicas.map((r) => r.stop()));
    await cleanup();
  }
}

/** A redis-server of our own on a free port (its commandstats count only this run). */
async function privateRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    lines.on("line", (line: string) => {
      if (/Ready to accept connections/.test(line)) resolve();
    });
    child.once("exit", () => reject(new Error("redis-server exited")));
  });
  return {
    url: `redis://127.0.0.1:${port}/0`,
    stop: async () => {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const own = values["private-redis"] ? await privateRedis() : undefined;
const REDIS = own?.url ?? values.redis;
try {
  const dir = mkdtempSync(join(tmpdir(), "smcp-bench-jobs-"));
  const ways: Way[] = [];
  if (ONLY.has("memory")) ways.push(await smcpWay("smcp, memory", await openStores("memory")));
  if (ONLY.has("sqlite")) ways.push(await smcpWay("smcp, SQLite", await openStores(`sqlite:${join(dir, "jobs.db")}`)));
  if (ONLY.has("redis")) {
    const prefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;
    ways.push(
      await smcpWay("smcp, Redis + BullMQ", await openStores(`${REDIS}?prefix=${prefix}`), REDIS, () =>
        deleteKeys(prefix, REDIS),
      ),
    );
  }
  if (ONLY.has("redis-store")) {
    // The Redis store as the queue (?queue=store): workers claim from the job store (lua/claim.lua), no BullMQ.
    const prefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;
    ways.push(
      await smcpWay("smcp, Redis, the store as the queue", await openStores(`${REDIS}?prefix=${prefix}&queue=store`), REDIS, () =>
        deleteKeys(prefix, REDIS),
      ),
    );
  }
  if (ONLY.has("postgres")) {
    const schema = `smcp_bench_${randomUUID().slice(0, 8)}`;
    ways.push(
      await smcpWay("smcp, PostgreSQL", await openStores(withSchema(values.postgres, schema)), undefined, () =>
        dropSchemas([schema], values.postgres),
      ),
    );
  }
  if (ONLY.has("raw")) ways.push(await rawBullWay(REDIS));
  let rows: Row[];
  try {
    rows = await interleaved(ways);
  } finally {
    for (const way of ways) await way.close();
  }
  const raw = rows.find((row) => row.name === RAW_BULL);
  if (ONLY.has("bullmq-postgres")) rows.push(await rawBullPostgresCycles(values.postgres));
  const latency: string[] = [];
  if (ONLY.has("latency")) {
    const prefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;
    latency.push(await latencyAcrossProcesses("Redis", `${REDIS}?prefix=${prefix}`, () => deleteKeys(prefix, REDIS)));
  }
  if (ONLY.has("latency-postgres")) {
    const schema = `smcp_bench_${randomUUID().slice(0, 8)}`;
    latency.push(
      await latencyAcrossProcesses("PostgreSQL", withSchema(values.postgres, schema), () =>
        dropSchemas([schema], values.postgres),
      ),
    );
  }
  if (ONLY.has("latency-sqlite")) {
    latency.push(await latencyAcrossProcesses("SQLite", `sqlite:${join(dir, "latency.db")}`, async () => {}));
  }

  console.log(
    `\n${CYCLES} cycles per pass after a warm-up pass, ${ROUNDS} rounds interleaved (median; ratio: median of the rounds' ratios), concurrency ${CONCURRENCY}, in process; smcp rows: callAndWait (start + long poll)\n`,
  );
  console.log("| jobs | cycles/s | vs raw BullMQ | requests/cycle |");
  console.log("|---|---:|---:|---:|");
  for (const row of rows) {
    const ratio = row.ratio !== undefined ? `${row.ratio.toFixed(2)}x` : raw ? `${(row.rate / raw.rate).toFixed(2)}x` : "";
    console.log(`| ${row.name} | ${row.rate.toFixed(0)} | ${ratio} | ${row.requests?.toFixed(2) ?? ""} |`);
  }
  for (const row of rows) if (row.profile) console.log(`\n${row.name}:\n- ${row.profile.join("\n- ")}`);
  for (const line of latency) console.log(`\n${line}`);
} finally {
  await own?.stop();
}
process.exit(0);
