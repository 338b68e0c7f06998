// HTTP throughput and latency, side by side: raw node:http, the official MCP
// SDK, and smcp serve (memory, SQLite, Redis). Same generator, same payload
// (batch_sum of 10 numbers), same concurrency, loopback only; every smcp
// request is a unique pre-signed envelope, so verification, the replay check
// and signing are all on. Bounded: peers x runs x requests, then it stops.
//
//   node --import tsx bench/http.ts [--requests 20000] [--runs 3] [--concurrency 64] [--peers raw,mcp-sdk,smcp-memory]
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { deleteKeys } from "../test/redis-helpers.js";
import { BENCH, benchEnvelope } from "./fixtures.js";
import { type LoadResult, median, runLoad } from "./load.js";
import { pinSelf, startPeer } from "./peer.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    runs: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    warmup: { type: "string", default: "3000" },
    peers: { type: "string", default: "raw,mcp-sdk,smcp-memory,smcp-sqlite,smcp-redis" },
    // An smcp server already running (e.g. under --cpu-prof) with the bench keys, instead of the peers.
    target: { type: "string" },
  },
});
const REQUESTS = Number(values.requests);
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const WARMUP = Number(values.warmup);

const SERVER_SECRET = BENCH.serverSecret;
const CLIENT_SECRET = BENCH.clientSecret;
const NUMBERS = [1.5, 2.25, 3, 4.75, 5, 6.5, 7, 8.125, 9, 10];

/** `count` unique signed batch_sum envelopes (own nonce, fresh ts_ms each). */
function signedBodies(count: number): string[] {
  return Array.from({ length: count }, () => benchEnvelope("batch_sum", { numbers: NUMBERS }));
}

function mcpBodies(count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      jsonrpc: "2.0",
      id: i,
      method: "tools/call",
      params: { name: "batch_sum", arguments: { numbers: NUMBERS } },
    }),
  );
}

interface Peer {
  name: string;
  command: string[];
  bodies: (count: number) => string[];
  headers?: Record<string, string>;
  check: (status: number, body: string) => boolean;
  cleanup?: () => Promise<void>;
}

const smcpArgs = (store: string) => [
  "dist/cli/main.js",
  "serve",
  "--port",
  "0",
  "--store",
  store,
  "--server-id",
  "bench",
  "--server-secret",
  SERVER_SECRET,
  "--client",
  `bench=${CLIENT_SECRET}`,
  "--config",
  "/nonexistent/keyring.json",
];
const smcpOk = (status: number, body: string) => status === 200 && body.includes('"ok":true');
const redisPrefix = `smcp-bench-${randomUUID().slice(0, 8)}:`;

const PEERS: Record<string, Peer> = {
  raw: {
    name: "raw node:http",
    command: ["--import", "tsx", "bench/peers/raw.ts"],
    bodies: signedBodies,
    check: (s) => s === 200,
  },
  "mcp-sdk": {
    name: "MCP SDK (stateless, JSON)",
    command: ["--import", "tsx", "bench/peers/mcp-sdk.ts"],
    bodies: mcpBodies,
    headers: { accept: "application/json, text/event-stream" },
    check: (s, b) => s === 200 && b.includes('"total":'),
  },
  "smcp-memory": { name: "smcp serve, memory", command: smcpArgs("memory"), bodies: signedBodies, check: smcpOk },
  "smcp-sqlite": {
    name: "smcp serve, SQLite",
    command: smcpArgs(`sqlite:${join(mkdtempSync(join(tmpdir(), "smcp-bench-")), "bench.db")}`),
    bodies: signedBodies,
    check: smcpOk,
  },
  "smcp-redis": {
    name: "smcp serve, Redis",
    command: smcpArgs(`redis://127.0.0.1:6379/0?prefix=${redisPrefix}`),
    bodies: signedBodies,
    check: smcpOk,
    cleanup: () => deleteKeys(redisPrefix),
  },
};

interface Row {
  peer: string;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  errors: number;
  runs: LoadResult[];
}

pinSelf(1);
const rows: Row[] = [];
for (const key of values.target ? ["smcp-memory"] : (values.peers as string).split(",")) {
  const peer = PEERS[key];
  if (!peer) throw new Error(`unknown peer ${key}; known: ${Object.keys(PEERS).join(", ")}`);
  const server = values.target
    ? { url: values.target.replace(/\/mcp$/, ""), stop: async () => {} }
    : await startPeer(peer.command, 0);
  try {
    const url = `${server.url}/mcp`;
    const load = (bodies: string[]) =>
      runLoad({ url, bodies, concurrency: CONCURRENCY, check: peer.check, ...(peer.headers ? { headers: peer.headers } : {}) });
    const warm = await load(peer.bodies(WARMUP));
    if (warm.errors > 0) throw new Error(`${peer.name}: ${warm.errors} errors during warm-up`);
    const runs: LoadResult[] = [];
    for (let r = 0; r < RUNS; r++) runs.push(await load(peer.bodies(REQUESTS)));
    const row: Row = {
      peer: peer.name,
      rps: median(runs.map((x) => x.rps)),
      p50ms: median(runs.map((x) => x.p50ms)),
      p99ms: median(runs.map((x) => x.p99ms)),
      maxms: Math.max(...runs.map((x) => x.maxms)),
      errors: runs.reduce((n, x) => n + x.errors, 0),
      runs,
    };
    rows.push(row);
    console.error(`${row.peer}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50ms.toFixed(2)} ms, p99 ${row.p99ms.toFixed(2)} ms`);
  } finally {
    await server.stop();
    await peer.cleanup?.();
  }
}

const raw = rows.find((r) => r.peer === "raw node:http");
const sdk = rows.find((r) => r.peer.startsWith("MCP SDK"));
console.log(`\nconcurrency ${CONCURRENCY}, ${RUNS} runs x ${REQUESTS} requests per peer (median), warm-up ${WARMUP}\n`);
console.log("| peer | req/s | p50 ms | p99 ms | max ms | errors | vs raw | vs MCP SDK | p99 vs raw |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : "-");
  console.log(
    `| ${r.peer} | ${r.rps.toFixed(0)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.maxms.toFixed(1)} | ${r.errors} | ${ratio(r.rps, raw?.rps)} | ${ratio(r.rps, sdk?.rps)} | ${ratio(r.p99ms, raw?.p99ms)} |`,
  );
}
