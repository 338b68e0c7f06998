// Memory: RSS across a bounded run of signed requests (in process, memory
// stores), and RSS held by finished jobs. Run with --expose-gc so samples
// are taken after a full collection.
//
//   node --expose-gc --import tsx bench/memory.ts [--requests 1000000] [--window-ms 5000] [--jobs 100000]
import { parseArgs } from "node:util";
import { createServer, demoTools, MemoryJobStore } from "../src/index.js";
import { benchEnvelope, noopJob } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "1000000" },
    "window-ms": { type: "string", default: "5000" },
    jobs: { type: "string", default: "100000" },
  },
});
const REQUESTS = Number(values.requests);
const WINDOW = Number(values["window-ms"]);
const JOBS = Number(values.jobs);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const rss = () => {
  gc();
  return process.memoryUsage().rss;
};
const heap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

const envelope = benchEnvelope;

// 1. A long run of unique signed requests; the replay cache holds one window's worth.
{
  const server = createServer({
    keyring: {
      serverId: "bench",
      serverSecrets: "bench-server-secret-0123456789",
      clients: { bench: "bench-client-secret-0123456789" },
    },
    freshnessMs: WINDOW,
  });
  const start = rss();
  const samples: [number, number][] = [];
  const t0 = Date.now();
  for (let done = 0; done < REQUESTS; ) {
    const batch = Array.from({ length: Math.min(10_000, REQUESTS - done) }, () =>
      envelope("batch_sum", { numbers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }),
    );
    for (const body of batch) {
      const answer = await server.handle(body);
      if (!answer.response.ok) throw new Error(answer.body);
    }
    done += batch.length;
    if (done % 100_000 === 0) samples.push([done, rss()]);
  }
  const seconds = (Date.now() - t0) / 1000;
  await server.close();
  // After warm-up: from the first sample past a window's worth of requests (and 20% of the run).
  const warm = samples.find(([n]) => n >= REQUESTS * 0.2 && (n / REQUESTS) * seconds * 1000 >= 2 * WINDOW) ?? samples[0];
  const end = samples[samples.length - 1];
  console.log(
    `\n${REQUESTS} signed requests in ${seconds.toFixed(1)} s (${(REQUESTS / seconds).toFixed(0)}/s), freshness window ${WINDOW} ms`,
  );
  console.log("| after requests | RSS MB |");
  console.log("|---:|---:|");
  console.log(`| 0 | ${mb(start)} |`);
  for (const [n, bytes] of samples) console.log(`| ${n} | ${mb(bytes)} |`);
  if (warm && end) console.log(`\nRSS end / after warm-up (${warm[0]}): ${(end[1] / warm[1]).toFixed(3)} (target within 10%)`);
}

// 2. Finished jobs retained (memory store, default 24 h retention).
{
  const jobStore = new MemoryJobStore({ maxJobs: JOBS + 1000 });
  const server = createServer({
    keyring: {
      serverId: "bench",
      serverSecrets: "bench-server-secret-0123456789",
      clients: { bench: "bench-client-secret-0123456789" },
    },
    tools: [...demoTools, noopJob],
    jobStore,
  });
  const before = heap();
  for (let done = 0; done < JOBS; ) {
    const batch = Array.from({ length: Math.min(5000, JOBS - done) }, () => envelope("noop_job", {}));
    for (const body of batch) {
      const answer = await server.handle(body);
      if (answer.response.status !== "accepted") throw new Error(answer.body);
    }
    done += batch.length;
    // Let the batch's jobs finish before the next, so at most one batch is in flight.
    while (
      (await jobStore.list({ state: "queued", limit: 1 })).length + (await jobStore.list({ state: "running", limit: 1 })).length >
      0
    ) {
      await new Promise((r) => setImmediate(r));
    }
  }
  const after = heap();
  const finished = (await jobStore.list({ state: "done" })).length;
  console.log(
    `\n${finished} finished jobs retained: heap ${mb(before)} -> ${mb(after)} MB, ${((after - before) / finished).toFixed(0)} bytes per job; RSS now ${mb(rss())} MB`,
  );
  await server.close();
}
process.exit(0);
