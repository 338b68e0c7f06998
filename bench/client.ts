// Client side (issue 22, item 6): what `createClient(...).call("batch_sum", ...)` costs over HTTP against
// the raw request it makes: the same POST with a body signed beforehand, answer read whole and not verified.
// Two transports, each beside its own raw request: `httpTransport` (Node's fetch, the portable default) and
// `undiciTransport` (smcp/http, undici.request on an agent of its own). One `smcp serve` (memory, no limiter,
// warn logs) pinned to CPU 0, this process to CPU 1; --concurrency calls in flight; rounds interleave the
// four (blocks of --calls each), so drift falls on all alike. Reported per way: calls/s and this process's
// CPU per call (user + system), medians over the rounds, and the ratios to the raw request the way makes.
//
// --python: then the Python client against the same server (bench/python-client.py: its calls/s against a
// urllib loop that signs with the seed's own code), pinned to CPU 1 too.
//
//   node --import tsx bench/client.ts [--rounds 7] [--calls 3000] [--concurrency 1] [--dist] [--python]
//     [--transports fetch,undici | undici | fetch]
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { request as undiciRequest } from "undici";
import { BATCH_NUMBERS, BENCH, benchEnvelope } from "./fixtures.js";
import { pinSelf } from "./peer.js";
import { quietFlags, startSmcp } from "./smcp.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    calls: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "1" },
    // Which transports' pairs run (each beside its raw request): both interleaved in one process, or one alone
    // (fetch's garbage and code then do not share this process's heap and caches with the undici pair).
    transports: { type: "string", default: "fetch,undici" },
    // The built client (dist/), as a user imports it, rather than the sources through tsx.
    dist: { type: "boolean", default: false },
    python: { type: "boolean", default: false },
    "python-calls": { type: "string", default: "1000" },
  },
});
const ROUNDS = Number(values.rounds);
const CALLS = Number(values.calls);
const CONCURRENCY = Number(values.concurrency);
const smcp = (await import(values.dist ? "../dist/index.js" : "../src/index.js")) as typeof import("../src/index.js");

pinSelf(1);
const server = await startSmcp({ store: "memory", extra: quietFlags() });
const url = `${server.url}/mcp`;
const http = (await import(values.dist ? "../dist/http.js" : "../src/http.js")) as typeof import("../src/http.js");
const clientOver = (transport: import("../src/index.js").Transport) =>
  smcp.createClient({
    clientId: "bench",
    clientSecret: BENCH.clientSecret,
    serverId: "bench",
    serverKey: BENCH.serverSecret,
    transport,
  });
const overFetch = clientOver(smcp.httpTransport(url));
const overUndici = clientOver(http.undiciTransport(url));
const headers = { "content-type": "application/json" };

const callWith =
  (client: import("../src/index.js").SmcpClient): Way =>
  (bodies) =>
    pool(bodies.length, async () => {
      const result = await client.call("batch_sum", { numbers: BATCH_NUMBERS });
      if (result.count !== BATCH_NUMBERS.length) throw new Error("wrong answer");
    });

type Way = (bodies: string[]) => Promise<void>;
const RAW_FETCH = "raw fetch, pre-signed body";
const RAW_UNDICI = "raw undici.request, pre-signed body";
/** Each way, whether it sends pre-signed bodies, and the raw request it is measured against. */
const WAYS: Record<string, { run: Way; presigned: boolean; raw: string }> = {
  "createClient().call, httpTransport (fetch)": { presigned: false, raw: RAW_FETCH, run: callWith(overFetch) },
  [RAW_FETCH]: {
    presigned: true,
    raw: RAW_FETCH,
    run: (bodies) =>
      pool(bodies.length, async (i) => {
        const response = await fetch(url, { method: "POST", headers, body: bodies[i] as string });
        const bytes = new Uint8Array(await response.arrayBuffer());
        if (response.status !== 200 || bytes.length === 0) throw new Error(`status ${response.status}`);
      }),
  },
  "createClient().call, undiciTransport": { presigned: false, raw: RAW_UNDICI, run: callWith(overUndici) },
  [RAW_UNDICI]: {
    presigned: true,
    raw: RAW_UNDICI,
    run: (bodies) =>
      pool(bodies.length, async (i) => {
        const response = await undiciRequest(url, { method: "POST", headers, body: bodies[i] as string });
        const bytes = new Uint8Array(await response.body.arrayBuffer());
        if (response.statusCode !== 200 || bytes.length === 0) throw new Error(`status ${response.statusCode}`);
      }),
  },
};

/** Runs `count` calls with CONCURRENCY in flight. */
async function pool(count: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await call(next++);
    }),
  );
}

const TRANSPORTS = new Set(values.transports.split(","));
for (const name of TRANSPORTS)
  if (name !== "fetch" && name !== "undici") throw new Error(`--transports: fetch and/or undici, not ${name}`);
for (const name of Object.keys(WAYS)) {
  const transport = name.includes("fetch") ? "fetch" : "undici";
  if (!TRANSPORTS.has(transport)) delete WAYS[name];
}
const results = new Map<string, { rate: number[]; cpu: number[] }>();
const signBodies = () => Array.from({ length: CALLS }, () => benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }));
// Warm-up: each way once, a block's worth.
for (const way of Object.values(WAYS)) await way.run(signBodies());
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, way] of Object.entries(WAYS)) {
    const bodies = way.presigned ? signBodies() : new Array<string>(CALLS).fill("");
    const cpu = process.cpuUsage();
    const start = performance.now();
    await way.run(bodies);
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    const entry = results.get(name) ?? { rate: [], cpu: [] };
    entry.rate.push((CALLS / ms) * 1000);
    entry.cpu.push((used.user + used.system) / CALLS);
    results.set(name, entry);
  }
}
const python = values.python
  ? execFileSync("taskset", ["-c", "1", "python3", "bench/python-client.py", url, values["python-calls"], String(ROUNDS)], {
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: "python/src" },
    })
  : "";
await server.stop();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(
  `\nclient side: ${ROUNDS} rounds x ${CALLS} calls per way, interleaved, concurrency ${CONCURRENCY}; smcp serve (memory) on CPU 0, this process on CPU 1${values.dist ? "; client from dist/" : ""}\n`,
);
console.log("| way | calls/s | client CPU µs/call | time per call vs its raw request | CPU per call vs its raw request |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, r] of results) {
  const base = results.get((WAYS[name] as { raw: string }).raw) as { rate: number[]; cpu: number[] };
  console.log(
    `| ${name} | ${median(r.rate).toFixed(0)} | ${median(r.cpu).toFixed(1)} | ${(median(base.rate) / median(r.rate)).toFixed(2)}x | ${(median(r.cpu) / median(base.cpu)).toFixed(2)}x |`,
  );
}
if (python) console.log(python);
process.exit(0);
