// Soak: one `smcp serve` per store at full speed under wrk for N minutes
// with the default ±300 s freshness window, so the replay cache grows to a
// window's worth of nonces and stays there. Reported per minute: req/s,
// p50/p99/max, error answers, server RSS (/proc/PID/status) and nonces held
// (memory: the server's smcp_nonces_held gauge, when it serves /metrics;
// SQLite: count(*) over a read-only connection; Redis: DBSIZE of a database
// of its own, less the idle server's keys), beside the count expected from
// what was sent. Then the store's bytes per nonce. Bounded: stores x minutes.
//
// Every body is unique and pre-signed before the load starts, one file per
// minute, with a ts_ms planned for the middle of that minute (the skew is
// printed), so no signing competes with the server or wrk. Server on CPU 0,
// wrk and this script on CPU 1; minutes run back to back (wrk streams the file).
//
//   node --import tsx bench/soak.ts [--minutes 5] [--stores memory,sqlite,redis] [--connections 64] [--smcp PATH]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { onAllCpus, pinSelf, rssOf } from "./peer.js";
import { BodyPool, writeSignedBodies } from "./sign.js";
import { DEFAULT_SMCP, quietFlags, serveHasFlag, startSmcp } from "./smcp.js";
import { type BenchStore, openBenchStore, type StoreKind } from "./stores.js";
import { runWrk, socketErrors, type WrkResult } from "./wrk.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    stores: { type: "string", default: "memory,sqlite,redis" },
    connections: { type: "string", default: "64" },
    // Length of a segment; 60 s is a minute, shorter only for smoke runs.
    "segment-s": { type: "string", default: "60" },
    // A full-speed warm-up run, then a calibration run whose rate sizes the minutes' files (rate x segment x headroom).
    "warmup-s": { type: "string", default: "5" },
    "calibrate-s": { type: "string", default: "10" },
    // Bodies a second signed for the warm-up and calibration: above the fastest server (memory answered ~30k/s in
    // session 11, and 25,000 ran out).
    "max-rate": { type: "string", default: "60000" },
    // Rates move by 2x on a shared machine: a minute that runs out of bodies is an error, not a replay.
    headroom: { type: "string", default: "2" },
    smcp: { type: "string", default: DEFAULT_SMCP },
    "redis-db": { type: "string" },
  },
});
const MINUTES = Number(values.minutes);
const SEGMENT_S = Number(values["segment-s"]);
const WARMUP_S = Number(values["warmup-s"]);
const CALIBRATE_S = Number(values["calibrate-s"]);
const MAX_RATE = Number(values["max-rate"]);
const HEADROOM = Number(values.headroom);
const CONNECTIONS = Number(values.connections);
/** smcp serve's default freshness window, which the soak keeps: a nonce is held until its ts_ms + this. */
const WINDOW_MS = 300_000;
/** Minutes of bodies signed ahead of the one running. */
const LOOKAHEAD = 2;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

interface Minute {
  r: WrkResult;
  rssMB: string;
  peakMB: string;
  held: number | undefined;
  expected: number;
  skewS: number;
}

/** Nonces the server should hold at `now`: accepted bodies whose ts_ms + window has not passed. */
function expectedHeld(sent: { tsMs: number; accepted: number }[], now: number): number {
  return sent.reduce((n, s) => n + (s.tsMs + WINDOW_MS >= now ? s.accepted : 0), 0);
}

async function soak(kind: StoreKind, dir: string): Promise<void> {
  const store = await openBenchStore(kind, values["redis-db"] ? { redisDb: Number(values["redis-db"]) } : {});
  const metrics = serveHasFlag("--metrics", values.smcp) ? ["--metrics"] : [];
  const server = await startSmcp({ store: store.url, bin: values.smcp, extra: [...metrics, ...quietFlags(values.smcp)] });
  const pid = server.process.pid as number;
  const url = `${server.url}/mcp`;
  try {
    await store.baseline(server.url);
    const idleRss = rssOf(pid).rss;
    const sent: { tsMs: number; accepted: number }[] = [];

    // Warm up, then calibrate at full speed: the calibration's rate sizes the minutes' files.
    const pool = new BodyPool(join(dir, `${kind}-calibrate.txt`), "signed");
    let signRate = 0; // bodies signed per second, to plan the minutes' ts_ms
    const calibrate = async (seconds: number) => {
      const t = performance.now();
      const added = await onAllCpus(1, () => pool.ensure(Math.ceil(MAX_RATE * seconds)));
      if (added > 0) signRate = added / ((performance.now() - t) / 1000);
      const tsMs = Date.now();
      const r = await runWrk({ url, bodiesFile: pool.file, skip: pool.sent, seconds, connections: CONNECTIONS, cpu: 1 });
      pool.consumed(r.used);
      sent.push({ tsMs, accepted: r.requests - r.non2xx });
      return r;
    };
    const warm = await calibrate(WARMUP_S);
    const cal = await calibrate(CALIBRATE_S);
    rmSync(pool.file);
    const rate = Math.max(warm.rps, cal.rps);
    console.error(`${kind}: calibration ${cal.rps.toFixed(0)} req/s (${cal.non2xx} errors); signing the minutes`);

    // Bodies are signed ahead, LOOKAHEAD minutes at a time: the first ones before the load on every CPU, then
    // each next minute's file while the current one runs, on the generator's CPU (a 30-minute soak at full speed
    // is tens of millions of bodies, too many to sign and hold before it starts). A minute's ts_ms is planned for
    // its middle; the skew column shows how far the plan drifted.
    const perMinute = Math.ceil(rate * SEGMENT_S * HEADROOM) + 2 * CONNECTIONS;
    const ahead = Math.min(LOOKAHEAD, MINUTES);
    const signingS = (ahead * perMinute) / signRate;
    const start = Date.now() + (signingS + 2) * 1000;
    const fileOf = (k: number) => join(dir, `${kind}-minute-${k + 1}.txt`);
    const planned: number[] = [];
    const sign = async (k: number, tsMs: number) => {
      planned[k] = tsMs;
      await writeSignedBodies({ file: fileOf(k), count: perMinute, tsMs });
    };
    await onAllCpus(1, async () => {
      for (let k = 0; k < ahead; k++) await sign(k, Math.round(start + (k + 0.5) * SEGMENT_S * 1000));
    });

    const minutes: Minute[] = [];
    for (let k = 0; k < MINUTES; k++) {
      const t0 = Date.now();
      const next = k + ahead;
      // Planned from this minute's start: the minutes between run back to back, plus a second each for measuring.
      const signing = next < MINUTES ? sign(next, Math.round(t0 + (ahead + 0.5) * SEGMENT_S * 1000 + ahead * 1000)) : undefined;
      const r = await runWrk({ url, bodiesFile: fileOf(k), seconds: SEGMENT_S, connections: CONNECTIONS, cpu: 1, stream: true });
      const t1 = Date.now();
      rmSync(fileOf(k));
      const tsMs = planned[k] as number;
      sent.push({ tsMs, accepted: r.requests - r.non2xx });
      const rss = rssOf(pid);
      minutes.push({
        r,
        rssMB: mb(rss.rss),
        peakMB: mb(rss.peak),
        held: await store.noncesHeld(server.url),
        expected: expectedHeld(sent, Date.now()),
        skewS: (tsMs - (t0 + t1) / 2) / 1000,
      });
      const last = minutes[minutes.length - 1] as Minute;
      console.error(
        `${kind} minute ${minutes.length}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms.toFixed(1)} ms, RSS ${last.rssMB} MB`,
      );
      // The next minute's file must be whole before its wrk starts.
      await signing;
    }
    await report(kind, minutes, idleRss, pid, store);
  } finally {
    await server.stop();
    await store.cleanup();
  }
}

async function report(kind: StoreKind, minutes: Minute[], idleRss: number, pid: number, store: BenchStore) {
  const label = SEGMENT_S === 60 ? "minute" : "segment";
  console.log(`\n### smcp serve --store ${kind}: ${minutes.length} x ${SEGMENT_S} s, wrk 1 thread ${CONNECTIONS} connections\n`);
  console.log(
    `| ${label} | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | RSS MB | peak RSS MB | nonces held | expected | ts_ms skew s |`,
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  minutes.forEach((m, i) => {
    const r = m.r;
    console.log(
      `| ${i + 1} | ${r.rps.toFixed(0)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(1)} | ${r.maxms.toFixed(0)} | ${r.non2xx} | ${socketErrors(r)} | ${m.rssMB} | ${m.peakMB} | ${m.held ?? "n/a"} | ${m.expected} | ${m.skewS >= 0 ? "+" : ""}${m.skewS.toFixed(1)} |`,
    );
  });
  const rates = minutes.map((m) => m.r.rps);
  const refused = minutes.reduce((n, m) => n + m.r.non2xx, 0);
  const second = minutes[1]?.r.p99ms;
  const lastMinute = minutes[minutes.length - 1] as Minute;
  console.log(
    "\nexpected: accepted answers whose ts_ms + 300 s had not passed (wrk does not count requests in flight at a segment's end)\n" +
      `non-2xx in all: ${refused}; req/s min/max ${(Math.min(...rates) / Math.max(...rates)).toFixed(2)}; ` +
      `p99 last/second ${second ? (lastMinute.r.p99ms / second).toFixed(2) : "-"}`,
  );
  // Issue 22's steady-state test: the last window's minutes against the window after the first (the cache is full
  // from the first window on), RSS and p99 each within 20%.
  const windowSegs = Math.round(WINDOW_MS / 1000 / SEGMENT_S);
  if (minutes.length >= 3 * windowSegs) {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = minutes.slice(windowSegs, 2 * windowSegs);
    const late = minutes.slice(-windowSegs);
    const rss = mean(late.map((m) => Number(m.rssMB))) / mean(early.map((m) => Number(m.rssMB)));
    const p99 = mean(late.map((m) => m.r.p99ms)) / mean(early.map((m) => m.r.p99ms));
    console.log(
      `last ${windowSegs} ${label}s against ${label}s ${windowSegs + 1}-${2 * windowSegs}: mean RSS ${rss.toFixed(2)}x, mean p99 ${p99.toFixed(2)}x ` +
        `(issue 22 asks both within 0.8-1.2x: ${Math.abs(rss - 1) <= 0.2 && Math.abs(p99 - 1) <= 0.2 ? "met" : "not met"})`,
    );
  }
  const held = lastMinute.held;
  if (kind === "memory") {
    // The replay cache lives in the server's heap: its RSS growth is the store's footprint.
    const growth = rssOf(pid).rss - idleRss;
    const count = held ?? lastMinute.expected;
    const what = held === undefined ? "expected" : "held";
    console.log(`server RSS grew ${mb(growth)} MB from idle: ${(growth / count).toFixed(0)} bytes per ${what} nonce (${count})`);
  }
  for (const line of await store.footprint(held)) console.log(line);
}

pinSelf(1);
const dir = mkdtempSync(join(tmpdir(), "smcp-soak-"));
let failed = false;
try {
  for (const kind of (values.stores as string).split(",")) {
    // One store's failure (e.g. its bodies ran out) is reported, and the other stores still run.
    await soak(kind as StoreKind, dir).catch((error: unknown) => {
      failed = true;
      console.log(`\n### smcp serve --store ${kind}: failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
