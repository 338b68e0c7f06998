// PostgreSQL beside memory, SQLite and Redis, in one bounded run (issue 25):
//
//   1. http    requests/s of `smcp serve` on each store, relative to memory (bench/http.ts)
//   2. nonces  bytes per held nonce, reservation latency, one sweep batch (bench/nonces.ts)
//   3. jobs    job cycles (start + long poll), raw BullMQ on Redis and on its PostgreSQL backend,
//              and the long-poll wake latency across processes (bench/jobs.ts)
//   4. soak    `smcp serve` at full speed for N minutes per store, the default ±300 s window, so
//              the replay cache fills to a window's worth and stays there: per segment req/s,
//              p50/p99/max, errors, RSS, nonces held against expected; then the store's bytes per
//              held nonce. bench/soak.ts (wrk) when /usr/bin/wrk exists, else the undici soak here.
//
// Loopback only; every part is bounded. --quick keeps each part to about 30 s (what a shared
// machine can spare); the full run is the lead's:
//
//   npm run build && node --import tsx bench/postgres.ts --quick
//   npm run build && node --import tsx bench/postgres.ts --soak-minutes 5
//     [--stores memory,sqlite,redis,postgres] [--parts http,nonces,jobs,soak] [--postgres URL]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { rssOf } from "./peer.js";
import { writeSignedBodies } from "./sign.js";
import { fetchMetrics, quietFlags, startSmcp } from "./smcp.js";
import { BENCH_POSTGRES, openBenchStore, type StoreKind } from "./stores.js";
import { hasWrk } from "./wrk.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    stores: { type: "string", default: "memory,sqlite,redis,postgres" },
    parts: { type: "string", default: "http,nonces,jobs,soak" },
    "soak-minutes": { type: "string" },
    "segment-s": { type: "string" },
    connections: { type: "string", default: "64" },
    postgres: { type: "string", default: BENCH_POSTGRES },
  },
});
const QUICK = values.quick;
const STORES = values.stores.split(",") as StoreKind[];
const PARTS = new Set(values.parts.split(","));
const SOAK_S = Number(values["soak-minutes"] ?? (QUICK ? 0.5 : 5)) * 60;
const SEGMENT_S = Number(values["segment-s"] ?? (QUICK ? 10 : 60));
const CONNECTIONS = Number(values.connections);
/** smcp serve's default freshness window: a nonce is held until its ts_ms + this. */
const WINDOW_MS = 300_000;
const env = { ...process.env, SMCP_BENCH_POSTGRES: values.postgres };

/** Runs another bench script (its stdout is this run's), and waits for it. */
async function run(script: string, args: string[], nodeFlags: string[] = []): Promise<void> {
  console.log(`\n<!-- node ${[...nodeFlags, script, ...args].join(" ")} -->`);
  const child = spawn(process.execPath, [...nodeFlags, "--import", "tsx", script, ...args], {
    stdio: ["ignore", "inherit", "inherit"],
    env,
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) console.log(`\n(${script} exited with ${code})`);
}

/** A segment's figures. */
interface Segment {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  rssMB: number;
  held: number | undefined;
  expected: number;
  ranOut: boolean;
}

/** Bodies of one segment, signed ahead in files of a bounded size, read one file at a time while sending. */
class Bodies {
  readonly #files: string[];
  #lines: string[] = [];
  #at = 0;
  constructor(files: string[]) {
    this.#files = [...files];
  }
  /** The next body, or undefined when every file is spent. */
  take(): string | undefined {
    while (this.#at >= this.#lines.length) {
      const file = this.#files.shift();
      if (!file) return undefined;
      this.#lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
      rmSync(file);
      this.#at = 0;
    }
    return this.#lines[this.#at++];
  }
}

/** Sends bodies at CONNECTIONS in flight until `seconds` pass (or the bodies run out). */
async function sendFor(url: string, seconds: number, bodies: Bodies): Promise<Omit<Segment, "rssMB" | "held" | "expected">> {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies: number[] = [];
  let errors = 0;
  let ranOut = false;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < deadline) {
        const body = bodies.take();
        if (body === undefined) {
          ranOut = true;
          return;
        }
        const started = performance.now();
        try {
          const response = await pool.request({
            path: target.pathname,
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          const text = await response.body.text();
          if (response.statusCode !== 200 || !text.includes('"ok":true')) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - started);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1) ?? 0,
    ranOut,
  };
}

/** Signs `count` bodies with one ts_ms into files of at most 50,000 lines. */
async function signSegment(dir: string, name: string, count: number, tsMs: number): Promise<string[]> {
  const files: string[] = [];
  for (let k = 0; k * 50_000 < count; k++) {
    const file = join(dir, `${name}-${k}.txt`);
    await writeSignedBodies({ file, count: Math.min(50_000, count - k * 50_000), tsMs });
    files.push(file);
  }
  return files;
}

/** The undici soak of one store (when wrk is not installed). */
async function soak(kind: StoreKind, dir: string): Promise<void> {
  const store = await openBenchStore(kind, kind === "postgres" ? { postgresUrl: values.postgres } : {});
  const server = await startSmcp({ store: store.url, extra: ["--metrics", ...quietFlags()] });
  const pid = server.process.pid as number;
  const url = `${server.url}/mcp`;
  try {
    await store.baseline(server.url);
    const idleRss = rssOf(pid).rss;
    const sent: { tsMs: number; accepted: number }[] = [];
    // A warm-up, then a calibration, each at full speed; the better rate sizes the segments' bodies
    // (x3: rates move by 2x on a shared machine; a segment that runs out of bodies says so).
    const runs: number[] = [];
    for (const [name, seconds] of [
      ["warm", 3],
      ["cal", 5],
    ] as const) {
      const at = Date.now();
      const r = await sendFor(url, seconds, new Bodies(await signSegment(dir, `${kind}-${name}`, 80_000, at)));
      sent.push({ tsMs: at, accepted: r.requests - r.errors });
      runs.push(r.rps);
    }
    const calibration = { rps: Math.max(...runs) };
    const segments = Math.max(1, Math.round(SOAK_S / SEGMENT_S));
    const perSegment = Math.ceil(calibration.rps * SEGMENT_S * 3) + 2 * CONNECTIONS;
    // Every segment signed first (signing uses every core; none of it during the load), ts_ms in its middle.
    const signStart = performance.now();
    const firstTs = Date.now();
    const first = await signSegment(dir, `${kind}-0`, perSegment, firstTs);
    const signS = ((performance.now() - signStart) / 1000) * segments;
    const start = Date.now() + signS * 1000;
    const plan = [{ files: first, tsMs: firstTs }];
    for (let k = 1; k < segments; k++) {
      const tsMs = Math.round(start + (k + 0.5) * SEGMENT_S * 1000);
      plan.push({ files: await signSegment(dir, `${kind}-${k}`, perSegment, tsMs), tsMs });
    }
    const rows: Segment[] = [];
    for (const [k, segment] of plan.entries()) {
      const r = await sendFor(url, SEGMENT_S, new Bodies(segment.files));
      sent.push({ tsMs: segment.tsMs, accepted: r.requests - r.errors });
      const now = Date.now();
      rows.push({
        ...r,
        rssMB: rssOf(pid).rss / 1024 / 1024,
        held: await store.noncesHeld(server.url),
        expected: sent.reduce((n, s) => n + (s.tsMs + WINDOW_MS >= now ? s.accepted : 0), 0),
      });
      console.error(`${kind} segment ${k + 1}/${segments}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms`);
    }
    console.log(
      `\n### soak (undici), smcp serve --store ${kind}: ${rows.length} x ${SEGMENT_S} s, ${CONNECTIONS} connections, calibration ${calibration.rps.toFixed(0)} req/s\n`,
    );
    console.log("| segment | req/s | p50 ms | p99 ms | max ms | errors | RSS MB | nonces held | expected |");
    console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const [i, r] of rows.entries()) {
      console.log(
        `| ${i + 1} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(0)} | ${r.errors}${r.ranOut ? " (bodies ran out)" : ""} | ${r.rssMB.toFixed(0)} | ${r.held ?? "n/a"} | ${r.expected} |`,
      );
    }
    const last = rows.at(-1) as Segment;
    const metrics = await fetchMetrics(server.url);
    if (kind === "memory") {
      const held = last.held ?? last.expected;
      console.log(
        `server RSS grew ${((rssOf(pid).rss - idleRss) / 1024 / 1024).toFixed(0)} MB from idle: ${((rssOf(pid).rss - idleRss) / held).toFixed(0)} bytes per held nonce (${held})`,
      );
    }
    for (const line of await store.footprint(last.held)) console.log(line);
    if (metrics?.includes("smcp_store_outages_total")) {
      console.log(`store outages during the soak: ${/^smcp_store_outages_total (\S+)/m.exec(metrics)?.[1] ?? "?"}`);
    }
  } finally {
    await server.stop();
    await store.cleanup();
  }
}

const peers = STORES.map((s) => `smcp-${s}`).join(",");
if (PARTS.has("http")) {
  const generator = hasWrk()
    ? ["--generator", "wrk", ...(QUICK ? ["--duration", "3", "--runs", "1", "--warmup-s", "1"] : [])]
    : ["--generator", "undici", ...(QUICK ? ["--requests", "4000", "--warmup", "1000", "--runs", "3"] : [])];
  await run("bench/http.ts", [...generator, "--peers", peers]);
}
if (PARTS.has("nonces")) {
  await run("bench/nonces.ts", ["--stores", STORES.join(","), "--held", QUICK ? "100000" : "1000000"], ["--expose-gc"]);
}
if (PARTS.has("jobs")) {
  const only = [
    ...STORES,
    ...(STORES.includes("redis") ? ["raw", "latency"] : []),
    ...(STORES.includes("postgres") ? ["bullmq-postgres", "latency-postgres"] : []),
    ...(STORES.includes("sqlite") ? ["latency-sqlite"] : []),
  ];
  await run("bench/jobs.ts", ["--only", only.join(","), ...(QUICK ? ["--cycles", "300", "--latency-cycles", "50"] : [])]);
}
if (PARTS.has("soak")) {
  if (hasWrk()) {
    const minutes = String(SOAK_S / 60);
    await run("bench/soak.ts", ["--minutes", minutes, "--segment-s", String(SEGMENT_S), "--stores", STORES.join(",")]);
  } else {
    const dir = mkdtempSync(join(tmpdir(), "smcp-bench-pg-soak-"));
    try {
      for (const kind of STORES) await soak(kind, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
process.exit(0);
