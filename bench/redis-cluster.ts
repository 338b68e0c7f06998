// Issue 24: what smcp costs Redis per request and per job cycle, on one Redis
// and on a local Redis Cluster (3 masters + 3 replicas, started here), and
// what `WAIT 1` after job creation costs. Both Redis setups are private to
// this run (so the counts are smcp's alone): commands from INFO commandstats
// deltas summed over every master, CPU from INFO cpu (used_cpu_user +
// used_cpu_sys) deltas summed over every master.
//
//   node --import tsx bench/redis-cluster.ts [--requests 2000] [--cycles 300]
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { createClient, createServer, demoTools, inProcessTransport, type OpenedStores } from "../src/index.js";
import { openStores } from "../src/stores.js";
import { freePort, start } from "../test/process-helpers.js";
import { startCluster } from "../test/redis-cluster-helpers.js";
import { redisReady } from "../test/redis-helpers.js";
import { BENCH, noopJob } from "./fixtures.js";

const { values } = parseArgs({ options: { requests: { type: "string" }, cycles: { type: "string" } } });
const REQUESTS = Number(values.requests ?? 2000);
const CYCLES = Number(values.cycles ?? 300);
const CONCURRENCY = 16;

interface Sample {
  calls: Map<string, number>;
  cpu: number;
}

async function sample(ports: number[]): Promise<Sample> {
  const calls = new Map<string, number>();
  let cpu = 0;
  for (const port of ports) {
    const redis = new Redis({ port, host: "127.0.0.1" });
    const role = await redis.info("replication");
    if (/role:slave/.test(role)) {
      redis.disconnect();
      continue;
    }
    for (const [, name, n] of (await redis.info("commandstats")).matchAll(/cmdstat_(\S+?):calls=(\d+)/g)) {
      calls.set(name as string, (calls.get(name as string) ?? 0) + Number(n));
    }
    const info = await redis.info("cpu");
    cpu += Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    redis.disconnect();
  }
  return { calls, cpu };
}

function delta(a: Sample, b: Sample, per: number): { commands: number; byName: string; cpuMs: number } {
  let total = 0;
  const names: string[] = [];
  for (const [name, n] of b.calls) {
    const d = n - (a.calls.get(name) ?? 0);
    if (d <= 0 || name === "info") continue;
    total += d;
    names.push(`${name} ${(d / per).toFixed(2)}`);
  }
  return { commands: total / per, byName: names.join(", "), cpuMs: ((b.cpu - a.cpu) * 1000) / per };
}

async function pool(n: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return performance.now() - t0;
}

async function measure(name: string, url: string, ports: number[]): Promise<void> {
  const stores: OpenedStores = await openStores(url);
  const server = createServer({
    keyring: { serverId: "bench", serverSecrets: BENCH.serverSecret, clients: { bench: BENCH.clientSecret } },
    tools: [...demoTools, noopJob],
    jobStore: stores.jobStore,
    nonceStore: stores.nonceStore,
    jobConcurrency: CONCURRENCY,
    limits: { rate: 1_000_000, ...(stores.rateLimiter ? { rateLimiter: stores.rateLimiter } : {}) },
    ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
  });
  const client = createClient({
    clientId: "bench",
    clientSecret: BENCH.clientSecret,
    serverId: "bench",
    serverSecret: BENCH.serverSecret,
    transport: inProcessTransport(server),
  });
  await pool(200, () => client.call("batch_sum", { numbers: [1, 2] })); // warm-up
  await pool(50, () => client.callAndWait("noop_job", {}));
  let s0 = await sample(ports);
  const syncMs = await pool(REQUESTS, () => client.call("batch_sum", { numbers: [1, 2] }));
  let s1 = await sample(ports);
  const req = delta(s0, s1, REQUESTS);
  s0 = await sample(ports);
  const jobMs = await pool(CYCLES, () => client.callAndWait("noop_job", {}));
  s1 = await sample(ports);
  const job = delta(s0, s1, CYCLES);
  // Job creation alone (the accepted answer), the latency WAIT adds to.
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) await client.call("noop_job", {});
  const createMs = (performance.now() - t0) / 200;
  console.log(`## ${name}`);
  console.log(
    `request (batch_sum): ${req.commands.toFixed(2)} commands [${req.byName}]; Redis CPU ${(req.cpuMs * 1000).toFixed(1)} ms per 1,000; ${((REQUESTS * 1000) / syncMs).toFixed(0)} req/s here`,
  );
  console.log(
    `job cycle (noop_job, callAndWait): ${job.commands.toFixed(2)} commands [${job.byName}]; Redis CPU ${job.cpuMs.toFixed(3)} ms per cycle; ${((CYCLES * 1000) / jobMs).toFixed(0)} cycles/s here`,
  );
  console.log(`job creation, sequential: ${createMs.toFixed(2)} ms per accepted job`);
  await server.close?.();
}

const port = await freePort();
const single = await start("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
await redisReady(port);
const cluster = await startCluster();
try {
  await measure("one Redis", `redis://127.0.0.1:${port}/0?prefix=b${randomUUID().slice(0, 6)}:`, [port]);
  await measure("Redis Cluster, wait=1 (default)", `${cluster.url}/?prefix=b${randomUUID().slice(0, 6)}`, cluster.ports);
  await measure("Redis Cluster, wait=0", `${`${cluster.url}/?prefix=b${randomUUID().slice(0, 6)}`}&wait=0`, cluster.ports);
} finally {
  await cluster.stop();
  await single.stop("SIGKILL");
}
process.exit(0);
