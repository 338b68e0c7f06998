// Job cycles per second: start a zero-length job, poll until done, on the
// memory, SQLite and Redis/BullMQ stores (in process: server.handle through a
// verifying client), beside raw BullMQ add -> process -> waitUntilFinished
// on the same Redis. Same concurrency for all. Bounded by --cycles.
//
//   node --import tsx bench/jobs.ts [--cycles 2000] [--concurrency 32]
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Queue, QueueEvents, Worker } from "bullmq";
import { builtinTools, createClient, createServer, inProcessTransport, type OpenedStores, openStores } from "../src/index.js";
import { deleteKeys } from "../test/redis-helpers.js";
import { noopJob } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    cycles: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "32" },
    "poll-ms": { type: "string", default: "1" },
  },
});
const POLL_MS = Number(values["poll-ms"]);
const CYCLES = Number(values.cycles);
const CONCURRENCY = Number(values.concurrency);
const REDIS = "redis://127.0.0.1:6379/0";

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

async function smcpCycles(name: string, stores: OpenedStores): Promise<number> {
  const keys = {
    serverId: "bench",
    serverSecret: "bench-server-secret-0123456789",
    clientSecret: "bench-client-secret-0123456789",
  };
  const server = createServer({
    keyring: { serverId: keys.serverId, serverSecrets: keys.serverSecret, clients: { bench: keys.clientSecret } },
    tools: [...builtinTools, noopJob],
    jobStore: stores.jobStore,
    nonceStore: stores.nonceStore,
    jobConcurrency: CONCURRENCY,
    ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
  });
  const client = createClient({
    clientId: "bench",
    clientSecret: keys.clientSecret,
    serverId: keys.serverId,
    serverSecret: keys.serverSecret,
    transport: inProcessTransport(server),
  });
  const cycle = async () => {
    const { job_id } = (await client.call("noop_job", {})) as { job_id: string };
    for (;;) {
      const polled = await client.poll(job_id);
      if (polled.status === "done") return;
      if (polled.status === "error") throw new Error(polled.error ?? "job failed");
      // A client polls with a pause; spinning would starve the in-process worker.
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };
  await loop(cycle); // warm-up pass
  const rate = await loop(cycle);
  await server.close();
  console.error(`${name}: ${rate.toFixed(0)} cycles/s`);
  return rate;
}

async function rawBullCycles(): Promise<number> {
  const prefix = `smcp-bench-${randomUUID().slice(0, 8)}`;
  const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
  const queue = new Queue("raw", { connection, prefix });
  queue.setMaxListeners(0); // many concurrent adds each wait on "closing"
  const events = new QueueEvents("raw", { connection, prefix });
  const worker = new Worker("raw", async () => ({}), { connection, prefix, concurrency: CONCURRENCY });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  const cycle = async () => {
    const job = await queue.add("noop", {}, { removeOnComplete: true, removeOnFail: true });
    await job.waitUntilFinished(events);
  };
  await loop(cycle);
  const rate = await loop(cycle);
  await worker.close();
  await events.close();
  await queue.close();
  await deleteKeys(prefix);
  console.error(`raw BullMQ: ${rate.toFixed(0)} cycles/s`);
  return rate;
}

const dir = mkdtempSync(join(tmpdir(), "smcp-bench-jobs-"));
const redisPrefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;
const rows: [string, number][] = [];
rows.push(["smcp, memory", await smcpCycles("smcp, memory", await openStores("memory"))]);
rows.push(["smcp, SQLite", await smcpCycles("smcp, SQLite", await openStores(`sqlite:${join(dir, "jobs.db")}`))]);
rows.push(["smcp, Redis + BullMQ", await smcpCycles("smcp, Redis + BullMQ", await openStores(`${REDIS}?prefix=${redisPrefix}`))]);
await deleteKeys(redisPrefix);
const raw = await rawBullCycles();
rows.push(["raw BullMQ add + process + waitUntilFinished", raw]);

console.log(`\n${CYCLES} cycles per row after a warm-up pass, concurrency ${CONCURRENCY}, poll pause ${POLL_MS} ms\n`);
console.log("| jobs | cycles/s | vs raw BullMQ |");
console.log("|---|---:|---:|");
for (const [name, rate] of rows) console.log(`| ${name} | ${rate.toFixed(0)} | ${(rate / raw).toFixed(2)}x |`);
process.exit(0);
