// HTTP throughput and latency, side by side: raw node:http, the official MCP
// SDK, and smcp serve (memory, SQLite, Redis, PostgreSQL). Same generator, same payload
// (batch_sum of 10 numbers), same connections, loopback only, servers pinned
// to CPU 0 and the generator to CPU 1. Every smcp request is a unique
// pre-signed envelope, so verification, the replay check and signing are all
// on; the raw peer gets the same bytes. Bounded: peers x runs, then it stops.
//
// Generators: wrk (C, one thread, a Lua script feeding each request its own
// body; the default when /usr/bin/wrk exists) runs for --duration seconds;
// undici (Node, same process as this script) sends --requests bodies.
//
//   node --import tsx bench/http.ts [--generator wrk|undici] [--duration 10] [--runs 3] [--concurrency 64]
//        [--peers raw,mcp-sdk,smcp-memory,...] [--order interleaved|sequential] [--ts rising|fixed] [--idle stop|run] [--target URL] [--smcp PATH]
//        [--smcp-before PATH: peers NAME@before run that build] [--cpu-prof DIR: smcp peers profiled, written to DIR]
//        [--rewarm-s 1: unmeasured load before each run] [peer keys smcp-...+--node-flag: the peer under that flag; smcp-...+stderr=null: its logs to /dev/null] [--rate R: wrk offers about R req/s, not as many as it can] [--inside on: each run's server-side loop delays and time per request] [--wire on: each run's latency on the wire (tcpdump)]
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BATCH_NUMBERS, benchEnvelope } from "./fixtures.js";
import { type GuestWindow, guestWindow, readGuest, watchWaits } from "./guest.js";
import { median, runLoad } from "./load.js";
import {
  cpuSecondsOf,
  INSIDE_BOUNDS_MS,
  type Inside,
  insideOf,
  onAllCpus,
  pinOther,
  pinSelf,
  type RunningPeer,
  signalTree,
  startPeer,
  treePids,
  treeUsageOf,
} from "./peer.js";
import { type BodyKind, BodyPool, mcpBody } from "./sign.js";
import { DEFAULT_SMCP, quietFlags, startSmcp } from "./smcp.js";
import { type StallProbe, type StallWindow, startStallProbe } from "./stalls.js";
import { openBenchStore, type StoreKind } from "./stores.js";
import { startWireCapture, type WireWindow } from "./wire.js";
import { hasWrk, runWrk, socketErrors } from "./wrk.js";

const { values } = parseArgs({
  options: {
    generator: { type: "string", default: hasWrk() ? "wrk" : "undici" },
    runs: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    // wrk: seconds per run and of the warm-up run. Unsent bodies left for a run >= best rate so far x duration x headroom
    // (the warm-up: max-rate x its seconds); one file per peer, topped up between runs.
    duration: { type: "string", default: "10" },
    "warmup-s": { type: "string", default: "3" },
    "max-rate": { type: "string", default: "100000" },
    headroom: { type: "string", default: "2" },
    // wrk: interleaved (every peer started first, then run 1 of each peer, run 2 of each, ..., each round in an
    // order of its own), so that drift of
    // a shared machine over the minutes of a run lands on every peer alike; or sequential (one peer after another).
    order: { type: "string", default: "interleaved" },
    // Interleaved: the seed of each round's own order (a shuffle), so that a run's orders can be replayed.
    "order-seed": { type: "string", default: "1" },
    // undici: requests per run and in the warm-up.
    requests: { type: "string", default: "20000" },
    warmup: { type: "string", default: "3000" },
    peers: { type: "string", default: "raw,floor,mcp-sdk,smcp-memory,smcp-ed25519,smcp-memory-limited,smcp-sqlite,smcp-redis" },
    // A server already running (e.g. under --cpu-prof) that takes bench-signed envelopes, instead of the peers.
    target: { type: "string" },
    smcp: { type: "string", default: DEFAULT_SMCP },
    // A second build (e.g. an older commit's, for before/after in one interleaved run): peer keys ending in
    // "@before" (smcp-default@before, smcp-memory@before, ...) run it instead of --smcp.
    "smcp-before": { type: "string" },
    // Every smcp peer under V8's sampling profiler, its .cpuprofile written to DIR when it stops
    // (for bench/profile-breakdown.ts).
    "cpu-prof": { type: "string" },
    // The store's own server when it runs on this machine (Redis on loopback) is pinned, for the bench, to the
    // generator's CPU: on a host of its own in production, it takes none of the measured server's core, and
    // unpinned the scheduler may put it on CPU 0 beside the server. "any" leaves it where it is.
    "store-cpu": { type: "string", default: "1" },
    // Bodies' ts_ms: "rising" at the rate they are expected to be sent (as clients signing at send time stamp
    // them), or "fixed": one ts_ms for every body signed at once (this bench before round 3 session 13).
    ts: { type: "string", default: "rising" },
    // Interleaved runs: "stop" (SIGSTOP) every other peer's server while one is measured, so none of them, its
    // garbage collector and timers included, runs on the measured peer's CPU; or "run": all keep running (this
    // bench before round 3 session 13).
    idle: { type: "string", default: "stop" },
    // wrk: seconds of load, unmeasured, before each measured run (after its bodies are signed; wrk then reads the
    // body file again, about a second of an idle server between the two, in both modes alike): a server
    // that sat idle through the other peers' runs and the signing (V8 shrinks an idle heap) is measured from its
    // steady state, not from its first second back under load. 0: none (this bench before round 3 session 13).
    "rewarm-s": { type: "string", default: "1" },
    // wrk: offer about this many requests a second in all (each connection waits a random 0-2x C/R s between an
    // answer and its next request; still a closed loop, so the rate is C/(C/R + latency): near R while latency is
    // small beside C/R) instead of as many as the server answers: tails compared at nearly one offered load.
    // At saturation a closed-loop generator keeps C requests in flight, so a server at half the rate shows twice
    // the latency from that alone (Little's law). Unset: saturation.
    rate: { type: "string" },
    // wrk: "on" measures the host's stalls of the servers' CPU during each run (bench/stalls.ts: a real-time
    // thread on CPU 0 that wakes every millisecond, about 2% of that CPU), to read each run's tail with; "off".
    stalls: { type: "string", default: "on" },
    // "on": every peer preloads bench/peers/inside.mjs (a 1 ms timer, a clock read per request) and each run
    // reports the server's longest event-loop delay and its own time per request beside wrk's latency.
    inside: { type: "string", default: "off" },
    // "on": tcpdump records each measured run's packets (bench/wire.ts) and each run reports the latency on the
    // wire, from a request's departure to its answer's, beside wrk's figure for the same requests.
    wire: { type: "string", default: "off" },
  },
});
const GENERATOR = values.generator;
if (values.stalls !== "on" && values.stalls !== "off") throw new Error("--stalls is on or off");
if (values.inside !== "on" && values.inside !== "off") throw new Error("--inside is on or off");
if (values.wire !== "on" && values.wire !== "off") throw new Error("--wire is on or off");
if (!Number.isSafeInteger(Number(values["order-seed"]))) throw new Error("--order-seed is an integer");
if (GENERATOR !== "wrk" && GENERATOR !== "undici") throw new Error("--generator is wrk or undici");
if (GENERATOR === "wrk" && !hasWrk()) throw new Error("wrk is not installed (/usr/bin/wrk); use --generator undici");
const RUNS = Number(values.runs);
const CONCURRENCY = Number(values.concurrency);
const SECONDS = Number(values.duration);
const WARMUP_S = Number(values["warmup-s"]);
const REWARM_S = Number(values["rewarm-s"]);
if (!(Number.isFinite(REWARM_S) && REWARM_S >= 0)) throw new Error("--rewarm-s is a number of seconds >= 0");
const MAX_RATE = Number(values["max-rate"]);
const HEADROOM = Number(values.headroom);
const REQUESTS = Number(values.requests);
const WARMUP = Number(values.warmup);
if (values.ts !== "rising" && values.ts !== "fixed") throw new Error("--ts is rising or fixed");
const RISING_TS = values.ts === "rising";
if (values.idle !== "stop" && values.idle !== "run") throw new Error("--idle is stop or run");
const RATE = values.rate === undefined ? undefined : Number(values.rate);
if (RATE !== undefined && !(Number.isFinite(RATE) && RATE > 0)) throw new Error("--rate is requests a second > 0");
if (RATE !== undefined && GENERATOR !== "wrk") throw new Error("--rate needs --generator wrk");
/** wrk's mean wait per connection between an answer and the next request, for --rate. */
const PACE_MS = RATE === undefined ? undefined : (CONCURRENCY * 1000) / RATE;

interface Peer {
  name: string;
  start: () => Promise<Pick<RunningPeer, "url" | "stop"> & Partial<Pick<RunningPeer, "process">>>;
  /** The endpoint's path on the started server. Default /mcp. */
  path?: string;
  bodies: BodyKind;
  headers?: Record<string, string>;
  /** Whether an answer is a success (checked on every undici answer, and once before each wrk run). */
  check: (status: number, body: string) => boolean;
  cleanup?: () => Promise<void>;
  /** The store's own server process (Redis on loopback): its CPU during each run is reported per request. */
  storePid?: number | undefined;
}

const smcpOk = (status: number, body: string) => status === 200 && body.includes('"ok":true');

/** The build the peer being made runs: --smcp, or --smcp-before for a key ending in "@before". */
let bin = values.smcp;
const quiet = () => quietFlags(bin);

async function smcpPeer(
  name: string,
  kind: StoreKind,
  options: { keys?: "hmac" | "ed25519"; extra?: string[]; cpu?: string; env?: NodeJS.ProcessEnv; bin?: string } = {},
): Promise<Peer> {
  const node = [...nodeFlags, ...(values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", values["cpu-prof"]] : [])];
  const stderr = peerStderr;
  const label = (nodeFlags.length > 0 ? ` [node ${nodeFlags.join(" ")}]` : "") + (stderr === "null" ? " [stderr /dev/null]" : "");
  const store = await openBenchStore(kind);
  const keys = options.keys ?? "hmac";
  const cpu = options.cpu ?? 0;
  const build = options.bin ?? bin;
  const extra = options.extra ?? quiet();
  return {
    name: (build === values.smcp ? name : `${name} [${build}]`) + label,
    start: () =>
      startSmcp({
        store: store.url,
        bin: build,
        keys,
        cpu,
        extra,
        env: options.env,
        node,
        stderr,
      }),
    bodies: keys === "ed25519" ? "signed-ed25519" : "signed",
    check: smcpOk,
    cleanup: store.cleanup,
    storePid: store.serverPid,
  };
}

/** Node's own flags for the smcp peer being made (a key's `+FLAG` suffixes). */
let nodeFlags: string[] = [];
/** Where the smcp peer being made writes its stderr (a key's `+stderr=null` suffix: /dev/null). */
let peerStderr: "file" | "null" = "file";

async function peerFor(given: string): Promise<Peer> {
  // smcp-memory+--max-semi-space-size=64: the peer with Node (V8) flags of its own, beside the same peer without.
  // smcp-default+stderr=null: its logs written to /dev/null, not a file (the file's share of what logging costs).
  const [spec, ...suffixes] = given.split("+") as [string, ...string[]];
  if (suffixes.length > 0 && !spec.startsWith("smcp-")) throw new Error(`${given}: +FLAG suffixes are for smcp peers`);
  const stderr = suffixes.filter((x) => x.startsWith("stderr="));
  if (stderr.some((x) => x !== "stderr=null")) throw new Error(`${given}: the one stderr suffix is +stderr=null`);
  peerStderr = stderr.length > 0 ? "null" : "file";
  nodeFlags = suffixes.filter((x) => !x.startsWith("stderr="));
  const before = spec.endsWith("@before");
  if (before && !values["smcp-before"]) throw new Error(`${spec}: give --smcp-before PATH`);
  bin = before ? (values["smcp-before"] as string) : values.smcp;
  const key = before ? spec.slice(0, -"@before".length) : spec;
  if (key === "raw") {
    return {
      name: "raw node:http",
      start: () => startPeer(["--import", "tsx", "bench/peers/raw.ts"], 0),
      bodies: "signed",
      check: (s) => s === 200,
    };
  }
  if (key === "floor") {
    return {
      name: "the floor (verify + nonce + sign, plainly)",
      start: () => startPeer(["--import", "tsx", "bench/peers/floor.ts"], 0),
      bodies: "signed",
      check: (s, b) => s === 200 && b.includes('"total":'),
    };
  }
  // The floor with its nonce set in a store, kept as plainly (bench/peers/floor.ts): beside smcp's own
  // store / memory ratios, what the store costs the floor itself.
  if (key === "floor-redis" || key === "floor-sqlite") {
    const kind = key === "floor-redis" ? "redis" : "sqlite";
    const store = await openBenchStore(kind);
    return {
      name: `the floor, nonces in ${kind === "redis" ? "Redis" : "SQLite"}`,
      start: () => startPeer(["--import", "tsx", "bench/peers/floor.ts"], 0, { FLOOR_NONCES: store.url }),
      bodies: "signed",
      check: (s, b) => s === 200 && b.includes('"total":'),
      cleanup: store.cleanup,
      storePid: store.serverPid,
    };
  }
  if (key === "floor-batched") {
    return {
      name: "the floor, answers written once per turn (smcp's write batching)",
      start: () => startPeer(["--import", "tsx", "bench/peers/floor.ts", "0", "batched"], 0),
      bodies: "signed",
      check: (s, b) => s === 200 && b.includes('"total":'),
    };
  }
  if (key === "adapter") {
    return {
      name: "smcp's HTTP adapter alone (stub handle)",
      start: () => startPeer(["--import", "tsx", "bench/peers/adapter.ts"], 0),
      bodies: "signed",
      check: (s, b) => s === 200 && b.includes('"ok":true'),
    };
  }
  // Issue 19 item 4: the same library server behind each of its HTTP adapters (no logs, no limiter).
  // adapter-node-deferred: serveHttp with a memory replay cache that answers a turn later (issue 22 item 3).
  if (key === "adapter-node" || key === "adapter-fetch" || key === "adapter-plain" || key === "adapter-node-deferred") {
    const [mode, deferred] = key.slice("adapter-".length).split("-") as [string, string | undefined];
    return {
      name: deferred
        ? "smcp library, serveHttp, memory replay cache answering a turn later"
        : ({
            node: "smcp library, serveHttp (node:http adapter)",
            fetch: "smcp library, fetch handler behind node:http",
            plain: "smcp library, handle() behind bare node:http (no adapter)",
          }[mode] as string),
      start: () => startPeer(["--import", "tsx", "bench/peers/adapters.ts", mode, ...(deferred ? [deferred] : [])], 0),
      bodies: "signed",
      check: (s, b) => s === 200 && b.includes('"ok":true'),
    };
  }
  if (key === "mcp-sdk") {
    return {
      name: "MCP SDK (stateless, JSON)",
      start: () => startPeer(["--import", "tsx", "bench/peers/mcp-sdk.ts"], 0),
      bodies: "mcp",
      headers: { accept: "application/json, text/event-stream" },
      check: (s, b) => s === 200 && b.includes('"total":'),
    };
  }
  if (key === "smcp-memory") return smcpPeer("smcp serve, memory", "memory");
  if (key === "smcp-ed25519") return smcpPeer("smcp serve, memory, Ed25519 client", "memory", { keys: "ed25519" });
  // The limiter on (a rate the bench never reaches, so it counts every request but refuses none), metrics on, logs on.
  if (key === "smcp-memory-observed") {
    return smcpPeer("smcp serve, memory, limiter + metrics + logs", "memory", {
      extra: ["--client-rate", "1000000/s", "--metrics", "--log-level", "info"],
    });
  }
  // Issue 22's "default flags": info logging (a line per request), the limiter and the replay cache on; the
  // limiter's rate set where the one bench client is counted but never refused (the default 1000/s would refuse).
  if (key === "smcp-default") {
    return smcpPeer("smcp serve, memory, default flags (info logs, limiter)", "memory", {
      extra: ["--client-rate", "1000000/s", "--log-level", "info", "--log-format", "json"],
    });
  }
  if (key === "smcp-memory-limited") {
    return smcpPeer("smcp serve, memory, limiter + metrics", "memory", {
      extra: ["--client-rate", "1000000/s", "--metrics", "--log-level", "warn"],
    });
  }
  // Tracing (issue 23): the OTel SDK loaded (OTEL_EXPORTER_OTLP_ENDPOINT set) but sampling nothing, or sampling
  // and exporting every request (OTLP http/protobuf, batched, to a sink in this process that drops it).
  // Metrics export stays off in both (OTEL_METRICS_EXPORTER=none): the span path is what is measured.
  // The same peer from another build (SMCP_BASE_BIN: its dist/cli/main.js), e.g. the commit before a change.
  if (key === "smcp-memory-base") {
    const bin = process.env.SMCP_BASE_BIN;
    if (!bin) throw new Error("smcp-memory-base needs SMCP_BASE_BIN (another build's dist/cli/main.js)");
    return smcpPeer(`smcp serve, memory (${bin})`, "memory", { bin, extra: quietFlags(bin) });
  }
  if (key === "smcp-otel-unsampled" || key === "smcp-otel-sampled") {
    const sink = await otlpSink();
    const sampled = key === "smcp-otel-sampled";
    const peer = await smcpPeer(
      `smcp serve, memory, OTel SDK ${sampled ? "sampling every request" : "present, not sampling"}`,
      "memory",
      {
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
          OTEL_TRACES_SAMPLER: sampled ? "always_on" : "always_off",
          OTEL_METRICS_EXPORTER: "none",
          OTEL_LOGS_EXPORTER: "none",
        },
      },
    );
    return {
      ...peer,
      cleanup: async () => {
        await peer.cleanup?.();
        await sink.close();
      },
    };
  }
  if (key === "smcp-sqlite") return smcpPeer("smcp serve, SQLite", "sqlite");
  if (key === "smcp-redis") return smcpPeer("smcp serve, Redis", "redis");
  if (key === "smcp-postgres") return smcpPeer("smcp serve, PostgreSQL", "postgres");
  // `serve --workers 2` (node:cluster) allowed on both CPUs: on this 2-core machine it shares CPU 1 with wrk,
  // so the figure is what a second process buys when the generator takes a core, not ideal scaling.
  const workers = /^smcp-(sqlite|redis|postgres)-workers2$/.exec(key)?.[1] as StoreKind | undefined;
  if (workers) {
    const label = { sqlite: "SQLite", redis: "Redis", postgres: "PostgreSQL" }[workers as string];
    return smcpPeer(`smcp serve --workers 2, ${label}, CPUs 0-1`, workers, {
      cpu: "0,1",
      extra: [...quiet(), "--workers", "2"],
    });
  }
  // One process allowed on both CPUs, as the two workers are: the control for them, sharing CPU 1 with wrk
  // alike, so that their ratio per CPU-second measures a second process, not the generator's share of a core.
  const shared = /^smcp-(sqlite|redis|postgres)-cpus01$/.exec(key)?.[1] as StoreKind | undefined;
  if (shared) {
    const label = { sqlite: "SQLite", redis: "Redis", postgres: "PostgreSQL" }[shared as string];
    return smcpPeer(`smcp serve, ${label}, one process, CPUs 0-1`, shared, { cpu: "0,1" });
  }
  throw new Error(
    `unknown peer ${key}; known: raw, floor, floor-batched, floor-redis, floor-sqlite, adapter, adapter-node, adapter-node-deferred, adapter-fetch, adapter-plain, mcp-sdk, smcp-memory, smcp-default, smcp-ed25519, smcp-memory-limited, smcp-memory-observed, smcp-otel-unsampled, smcp-otel-sampled, smcp-sqlite, smcp-redis, smcp-postgres, smcp-sqlite-workers2, smcp-redis-workers2, smcp-postgres-workers2, smcp-sqlite-cpus01, smcp-redis-cpus01, smcp-postgres-cpus01`,
  );
}

/** An OTLP/HTTP receiver that reads and drops every export (200 at once). */
async function otlpSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function targetPeer(target: string): Peer {
  const url = new URL(target);
  if (url.pathname === "/") url.pathname = "/mcp";
  return {
    name: `target ${url.href}`,
    start: async () => ({ url: url.origin, stop: async () => {} }),
    path: url.pathname,
    bodies: "signed",
    check: (s) => s >= 200 && s < 300,
  };
}

const algOf = (kind: BodyKind) => (kind === "signed-ed25519" ? "ed25519" : "hmac");

/** One run's figures. */
interface Run {
  rps: number;
  /**
   * The requests' own latencies. With wrk, its correction for coordinated omission undone (bench/wrk/bodies.lua):
   * wrk's figures include samples it adds for every request slower than twice a connection's mean interval.
   */
  p50ms: number;
  p99ms: number;
  maxms: number;
  /** Mean latency (wrk only). */
  meanms: number | undefined;
  /** wrk's own p99, with its correction for coordinated omission (the figure of rounds 1-3 up to session 15). */
  correctedP99ms: number | undefined;
  errors: number;
  socket: string;
  /** Requests answered per CPU second the server (and its workers) used during the run: the per-core yardstick. */
  perCpuS: number | undefined;
  /** Per answered request, what the server's process tree used: CPU µs (user, system) and I/O system calls. */
  perRequest: PerRequest | undefined;
  /** CPU µs (user + system) the store's own server (Redis) used per answered request, when it runs here. */
  storeUs: number | undefined;
  /** The host's stalls of CPU 0 during the run (wrk with --stalls on). */
  stalls: StallWindow | undefined;
  /** What else the guest ran on CPU 0, and the server's major page faults, during the run (wrk only). */
  guest: GuestWindow | undefined;
  /** What the server saw inside during the run: its loop's delays, its own time per request (--inside on). */
  inside: Inside | undefined;
  /** The run's latency on the wire (--wire on). */
  wire: WireWindow | undefined;
}

/** A server's use per answered request (from /proc, the whole process tree). */
interface PerRequest {
  /** CPU µs, user + kernel (its own median across runs, not the sum of the two medians). */
  totalUs: number;
  userUs: number;
  systemUs: number;
  syscr: number;
  syscw: number;
  rchar: number;
  wchar: number;
}

/** One row of the table: the median of the runs (max: the worst run). */
interface Row extends Omit<Run, "stalls" | "guest" | "inside" | "wire"> {
  peer: string;
  /** Each run's req/s, in order (interleaved: run i of every peer is round i). */
  rounds: number[];
  /** Each run's p99, requests per server CPU-second and the host's stalls of CPU 0 during it, in order. */
  tails: {
    p99ms: number;
    perCpuS: number | undefined;
    stalls: StallWindow | undefined;
    guest: GuestWindow | undefined;
    inside: Inside | undefined;
    wire: WireWindow | undefined;
  }[];
}

/** Sends one fresh body and checks the answer, so a wrong setup fails loudly instead of measuring error answers. */
async function sanityCheck(peer: Peer, url: string): Promise<void> {
  const body =
    peer.bodies === "mcp" ? mcpBody(0) : benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }, Date.now(), algOf(peer.bodies));
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...peer.headers }, body });
  const text = await response.text();
  if (!peer.check(response.status, text))
    throw new Error(`${peer.name}: unexpected answer ${response.status} ${text.slice(0, 300)}`);
}

/** Runs wrk against one peer: a warm-up, then one measured run per call, each with bodies signed just before it. */
class WrkPeer {
  readonly #pool: BodyPool;
  #best = 0;
  /** Requests answered in every run so far, warm-up included: what a --cpu-prof profile of the peer covers. */
  answered = 0;

  constructor(
    readonly peer: Peer,
    readonly url: string,
    file: string,
    readonly pid?: number,
  ) {
    this.#pool = new BodyPool(file, peer.bodies);
  }

  async warmUp(): Promise<void> {
    const offered = RATE ?? MAX_RATE;
    const warm = await this.#wrk(WARMUP_S, Math.ceil(offered * WARMUP_S * (RATE ? HEADROOM : 1)), offered, 0, false);
    if (warm.errors > 0) throw new Error(`${this.peer.name}: ${warm.errors} error answers during warm-up`);
    this.#best = warm.rps;
  }

  async run(): Promise<Run> {
    // A floor of 5,000 req/s: a peer whose warm-up ran cold (JIT, a noisy neighbour) may more than double later.
    const rate = RATE ?? Math.max(this.#best, 5000);
    const run = await this.#wrk(SECONDS, Math.ceil(rate * SECONDS * HEADROOM) + 2 * CONCURRENCY, rate, REWARM_S);
    this.#best = Math.max(this.#best, run.rps);
    return run;
  }

  dispose(): void {
    rmSync(this.#pool.file, { force: true });
  }

  /** One wrk run; `measured`: a run the tables report (the guest, inside and wire readings are taken only then). */
  async #wrk(seconds: number, count: number, perSecond: number, rewarmS = 0, measured = true): Promise<Run> {
    // Bodies left from an earlier run may be minutes old when runs are interleaved: never send them.
    this.#pool.discard();
    const rewarmCount = rewarmS > 0 ? Math.ceil(perSecond * rewarmS * HEADROOM) + 2 * CONCURRENCY : 0;
    // Signing uses both cores: the server sits idle meanwhile. The bodies' ts_ms rise at the rate they are expected
    // to be sent, as clients signing at send time stamp them: one ts_ms for all would make the expiries a store
    // indexes (SQLite, PostgreSQL) arrive in random order, which real traffic does not.
    await onAllCpus(1, () => this.#pool.ensure(count + rewarmCount, RISING_TS ? perSecond : undefined));
    const headers = this.peer.headers ? { headers: this.peer.headers } : {};
    const pace = PACE_MS === undefined ? {} : { paceMs: PACE_MS };
    if (rewarmS > 0) {
      const warm = await runWrk({
        url: this.url,
        bodiesFile: this.#pool.file,
        skip: this.#pool.sent,
        seconds: rewarmS,
        connections: CONCURRENCY,
        cpu: 1,
        ...pace,
        ...headers,
      });
      this.#pool.consumed(warm.used);
      this.answered += warm.requests;
      if (warm.non2xx > 0) throw new Error(`${this.peer.name}: ${warm.non2xx} error answers before a run`);
    }
    // Started before the readings below, and stopped after the ones after the run, so that neither the capture's
    // start nor its parse falls inside the window they measure.
    const port = (() => {
      const u = new URL(this.url);
      return Number(u.port || (u.protocol === "https:" ? 443 : 80));
    })();
    const capture = measured && values.wire === "on" ? await startWireCapture(port, 1) : undefined;
    const use0 = this.pid ? treeUsageOf(this.pid) : undefined;
    const store0 = this.peer.storePid ? cpuSecondsOf(this.peer.storePid) : 0;
    const serverPids = this.pid ? treePids(this.pid) : new Set<number>();
    const guest0 = measured ? readGuest(0, serverPids) : undefined;
    const started = Date.now();
    const from = stallProbe?.now();
    const wrkWaits = measured ? watchWaits(process.pid, "wrk") : undefined;
    let r: Awaited<ReturnType<typeof runWrk>>;
    try {
      r = await runWrk({
        url: this.url,
        bodiesFile: this.#pool.file,
        skip: this.#pool.sent,
        seconds,
        connections: CONCURRENCY,
        cpu: 1,
        ...pace,
        ...headers,
      });
    } catch (error) {
      // Neither the sampling timer nor tcpdump may outlive a failed run (either would keep this process alive).
      wrkWaits?.stop();
      await capture?.stop().catch(() => undefined);
      throw error;
    }
    const wrkWaited = wrkWaits?.stop();
    let wire: WireWindow | undefined;
    const stalls = stallProbe && from !== undefined ? stallProbe.window(from, stallProbe.now()) : undefined;
    const ended = Date.now();
    const guest1 = guest0 ? readGuest(0, serverPids) : undefined;
    const use1 = this.pid ? treeUsageOf(this.pid) : undefined;
    try {
      wire = await capture?.stop();
    } catch (error) {
      console.error(`${this.peer.name}: no wire figures for this run: ${(error as Error).message}`);
    }
    const inside = this.pid && measured ? insideOf(treePids(this.pid), started, ended) : undefined;
    // Per second of wrk's own run (its start-up, formatting the bodies, falls in the window too).
    const guest =
      guest0 && guest1 ? guestWindow(guest0, guest1, { server: serverPids, seconds: r.seconds, wrk: wrkWaited }) : undefined;
    const cpuS = use0 && use1 ? use1.userS + use1.systemS - use0.userS - use0.systemS : 0;
    const per = (a: number, b: number) => (a - b) / r.requests;
    const storeS = this.peer.storePid ? cpuSecondsOf(this.peer.storePid) - store0 : undefined;
    this.#pool.consumed(r.used);
    this.answered += r.requests;
    // The requests' own figures: the script prints none (null) when its checks of wrk's histogram fail. A measured
    // run stops the bench then; the warm-up, only a rate to size the next runs by, goes on with wrk's own.
    if (!r.measured && measured) throw new Error(`${this.peer.name}: wrk's latencies could not be read without its correction`);
    return {
      rps: r.rps,
      p50ms: r.measured?.p50ms ?? r.p50ms,
      p99ms: r.measured?.p99ms ?? r.p99ms,
      maxms: r.maxms,
      meanms: r.measured?.meanms ?? r.meanms,
      correctedP99ms: r.p99ms,
      errors: r.non2xx,
      socket: socketErrors(r),
      stalls,
      guest,
      inside,
      wire,
      perCpuS: cpuS > 0 ? r.requests / cpuS : undefined,
      perRequest:
        use0 && use1 && r.requests > 0
          ? {
              totalUs: (cpuS / r.requests) * 1e6,
              userUs: per(use1.userS, use0.userS) * 1e6,
              systemUs: per(use1.systemS, use0.systemS) * 1e6,
              syscr: per(use1.syscr, use0.syscr),
              syscw: per(use1.syscw, use0.syscw),
              rchar: per(use1.rchar, use0.rchar),
              wchar: per(use1.wchar, use0.wchar),
            }
          : undefined,
      storeUs: storeS !== undefined && r.requests > 0 ? (storeS * 1e6) / r.requests : undefined,
    };
  }
}

async function undiciRuns(peer: Peer, url: string): Promise<Run[]> {
  const bodies = (count: number) =>
    Array.from({ length: count }, (_, i) =>
      peer.bodies === "mcp" ? mcpBody(i) : benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }, Date.now(), algOf(peer.bodies)),
    );
  const load = async (count: number): Promise<Run> => {
    const r = await runLoad({
      url,
      bodies: bodies(count),
      concurrency: CONCURRENCY,
      check: peer.check,
      ...(peer.headers ? { headers: peer.headers } : {}),
    });
    return {
      rps: r.rps,
      p50ms: r.p50ms,
      p99ms: r.p99ms,
      maxms: r.maxms,
      meanms: undefined,
      correctedP99ms: undefined,
      errors: r.errors,
      socket: "-",
      stalls: undefined,
      guest: undefined,
      inside: undefined,
      wire: undefined,
      perCpuS: undefined,
      perRequest: undefined,
      storeUs: undefined,
    };
  };
  const warm = await load(WARMUP);
  if (warm.errors > 0) throw new Error(`${peer.name}: ${warm.errors} errors during warm-up`);
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(await load(REQUESTS));
  return runs;
}

pinSelf(1);
/** The index of the bucket holding a run's 99th percentile of the server's own time per request. */
function insideP99(inside: Inside): number {
  const total = inside.counts.reduce((a, b) => a + b, 0);
  let below = 0;
  for (let i = 0; i < inside.counts.length; i++) {
    below += inside.counts[i] as number;
    if (below >= 0.99 * total) return i;
  }
  return inside.counts.length - 1;
}

/** A bucket's upper bound as printed ("> 100" for the open one; a fractional median index rounds up). */
function boundLabel(index: number): string {
  const bound = INSIDE_BOUNDS_MS[Math.ceil(index)];
  return bound === undefined ? `> ${INSIDE_BOUNDS_MS[INSIDE_BOUNDS_MS.length - 1]}` : String(bound);
}

/** The host's stalls of the servers' CPU (wrk runs with --stalls on; undefined without gcc). */
let stallProbe: StallProbe | undefined;
if (GENERATOR === "wrk" && values.stalls === "on") {
  try {
    stallProbe = await startStallProbe(0);
  } catch (error) {
    // The figures are a reading aid: the bench goes on without them.
    console.error(`no stall probe: ${(error as Error).message}`);
  }
}
if (stallProbe && !stallProbe.fifo)
  console.error("the stall probe is not real-time (no permission): its figures include its own waits");
// The body files in memory (/dev/shm) where there is one: written to a disk, their pages are written back by the
// kernel's flusher threads some 30 s later, during another peer's measured run.
const dir = mkdtempSync(join(inMemory() ? "/dev/shm" : tmpdir(), "smcp-bench-http-"));
/** Where the peers write what they saw inside with --inside on (in `dir`, so removed with it). */
const INSIDE_DIR = values.inside === "on" ? join(dir, "inside") : undefined;
if (INSIDE_DIR) {
  mkdirSync(INSIDE_DIR);
  process.env.BENCH_INSIDE_DIR = INSIDE_DIR;
}
/** Whether /dev/shm exists with room for the bodies (8 GiB free: a container's is often 64 MiB). */
function inMemory(): boolean {
  try {
    const fs = statfsSync("/dev/shm");
    return fs.bavail * fs.bsize >= 8 * 1024 ** 3;
  } catch {
    return false;
  }
}
const rows: Row[] = [];

function rowOf(peer: Peer, runs: Run[]): Row {
  const row: Row = {
    peer: peer.name,
    rps: median(runs.map((x) => x.rps)),
    p50ms: median(runs.map((x) => x.p50ms)),
    p99ms: median(runs.map((x) => x.p99ms)),
    maxms: Math.max(...runs.map((x) => x.maxms)),
    meanms: runs.every((x) => x.meanms !== undefined) ? median(runs.map((x) => x.meanms as number)) : undefined,
    correctedP99ms: runs.every((x) => x.correctedP99ms !== undefined)
      ? median(runs.map((x) => x.correctedP99ms as number))
      : undefined,
    errors: runs.reduce((n, x) => n + x.errors, 0),
    socket: runs.map((x) => x.socket).join(" / "),
    perCpuS: runs.every((x) => x.perCpuS !== undefined) ? median(runs.map((x) => x.perCpuS as number)) : undefined,
    perRequest: runs.every((x) => x.perRequest !== undefined)
      ? (Object.fromEntries(
          (["totalUs", "userUs", "systemUs", "syscr", "syscw", "rchar", "wchar"] as const).map((k) => [
            k,
            median(runs.map((x) => (x.perRequest as PerRequest)[k])),
          ]),
        ) as unknown as PerRequest)
      : undefined,
    storeUs: runs.every((x) => x.storeUs !== undefined) ? median(runs.map((x) => x.storeUs as number)) : undefined,
    rounds: runs.map((x) => x.rps),
    tails: runs.map((x) => ({
      p99ms: x.p99ms,
      perCpuS: x.perCpuS,
      stalls: x.stalls,
      guest: x.guest,
      inside: x.inside,
      wire: x.wire,
    })),
  };
  console.error(
    `${row.peer}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50ms.toFixed(2)} ms, p99 ${row.p99ms.toFixed(2)} ms (own${row.correctedP99ms !== undefined ? `; wrk's corrected ${row.correctedP99ms.toFixed(2)} ms` : ""}); runs ${row.rounds.map((x) => x.toFixed(0)).join(" / ")}; p99 per run ${runs.map((x) => x.p99ms.toFixed(1)).join(" / ")} ms`,
  );
  return row;
}

interface Started {
  peer: Peer;
  url: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}

/** Stores' servers pinned for this run, and what gives each its CPUs back (also on SIGINT and SIGTERM). */
const unpinStores = new Map<number, () => void>();
function unpinAll(): void {
  for (const unpin of unpinStores.values()) unpin();
  unpinStores.clear();
}
/** Peers' servers stopped (--idle stop) while another is measured: resumed before they are stopped for good. */
const frozen = new Set<number>();
/**
 * Under --idle stop: resumes the server of `pid` and stops every other of `pids` once it has gone quiet (its
 * CPU time unchanged over 100 ms, 3 s at most): one stopped while it still finishes its last requests could
 * hold a store's lock or transaction (PostgreSQL's vacuum horizon) through the measured peer's run.
 */
async function measureOnly(pid: number | undefined, pids: (number | undefined)[]): Promise<void> {
  if (values.idle !== "stop") return;
  for (const other of pids) {
    if (other === undefined || other === pid || frozen.has(other)) continue;
    const until = Date.now() + 3000;
    for (let last = cpuSecondsOf(other); Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = cpuSecondsOf(other);
      if (now === last) break;
      last = now;
    }
    // Recorded first: a stop that fails partway is still undone.
    frozen.add(other);
    signalTree(other, "SIGSTOP");
  }
  if (pid !== undefined && frozen.delete(pid)) signalTree(pid, "SIGCONT");
}
function resumeAll(): void {
  for (const pid of frozen) signalTree(pid, "SIGCONT");
  frozen.clear();
}
// Every way out resumes them: an exception thrown from an event handler skips the finally blocks below.
process.on("exit", resumeAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    unpinAll();
    resumeAll();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

async function startOne(key: string): Promise<Started> {
  const peer = values.target ? targetPeer(values.target) : await peerFor(key);
  if (peer.storePid && values["store-cpu"] !== "any" && !unpinStores.has(peer.storePid)) {
    const unpin = pinOther(peer.storePid, values["store-cpu"] as string);
    if (unpin) unpinStores.set(peer.storePid, unpin);
  }
  const server = await peer.start();
  const url = `${server.url}${peer.path ?? "/mcp"}`;
  const stop = async () => {
    await server.stop();
    await peer.cleanup?.();
  };
  try {
    await sanityCheck(peer, url);
  } catch (error) {
    await stop();
    throw error;
  }
  return { peer, url, pid: server.process?.pid, stop };
}

/**
 * Under --cpu-prof, the requests an smcp peer answered in all (warm-up included), for
 * bench/profile-breakdown.ts. With `--workers N` the count is the workers' together: each writes a profile.
 */
function reportAnswered(runner: WrkPeer): void {
  if (values["cpu-prof"] && runner.peer.name.startsWith("smcp")) {
    console.error(`${runner.peer.name}: ${runner.answered} requests in all (its profile)`);
  }
}

/** A small seeded PRNG (mulberry32): each round's order is replayable from --order-seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 0..n-1 in a random order (Fisher-Yates). */
function shuffled(n: number, random: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as number, out[i] as number];
  }
  return out;
}

/** Whether a store's server was pinned for the run (for the table's heading). */
let storePinned = false;
const INTERLEAVED = GENERATOR === "wrk" && values.order === "interleaved";
try {
  const keys = values.target ? ["target"] : (values.peers as string).split(",");
  if (INTERLEAVED) {
    // Every peer listens at once (pinned to CPU 0; under --idle stop, stopped while another is measured), and
    // takes its runs in turn.
    const started: Started[] = [];
    try {
      for (const key of keys) started.push(await startOne(key));
      const runners = started.map((s, i) => new WrkPeer(s.peer, s.url, join(dir, `bodies-${i}.txt`), s.pid));
      const pids = started.map((s) => s.pid);
      try {
        for (const runner of runners) {
          await measureOnly(runner.pid, pids);
          await runner.warmUp();
        }
        const runs: Run[][] = runners.map(() => []);
        const random = seeded(Number(values["order-seed"]));
        for (let r = 0; r < RUNS; r++) {
          // Each round in its own order (a shuffle from --order-seed): in one run, identical servers measured in
          // a fixed order after raw had p99s up to 3.6x apart (BENCHMARKS, round 3 session 15), and shifting the
          // start alone keeps every peer behind the same neighbour in most rounds.
          const order = shuffled(runners.length, random);
          console.error(`round ${r + 1}: ${order.map((i) => (runners[i] as WrkPeer).peer.name).join(" -> ")}`);
          for (const i of order) {
            const runner = runners[i] as WrkPeer;
            await measureOnly(runner.pid, pids);
            (runs[i] as Run[]).push(await runner.run());
          }
        }
        for (const [i, runner] of runners.entries()) {
          rows.push(rowOf(runner.peer, runs[i] as Run[]));
          reportAnswered(runner);
        }
      } finally {
        for (const runner of runners) runner.dispose();
      }
    } finally {
      resumeAll();
      for (const s of started) await s.stop();
    }
  } else {
    for (const key of keys) {
      const { peer, url, pid, stop } = await startOne(key);
      try {
        let runs: Run[];
        if (GENERATOR === "wrk") {
          const runner = new WrkPeer(peer, url, join(dir, "bodies.txt"), pid);
          try {
            await runner.warmUp();
            runs = [];
            for (let r = 0; r < RUNS; r++) runs.push(await runner.run());
            reportAnswered(runner);
          } finally {
            runner.dispose();
          }
        } else {
          runs = await undiciRuns(peer, url);
        }
        rows.push(rowOf(peer, runs));
      } finally {
        await stop();
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  const pinned = unpinStores.size > 0;
  unpinAll();
  storePinned = pinned;
  stallProbe?.stop();
}

const raw = rows.find((r) => r.peer === "raw node:http");
const sdk = rows.find((r) => r.peer.startsWith("MCP SDK"));
const floor = rows.find((r) => r.peer.startsWith("the floor ("));
const per =
  GENERATOR === "wrk"
    ? `wrk (1 thread, ${CONCURRENCY} connections), ${RUNS} runs x ${SECONDS} s per peer (median; max: worst run), warm-up ${WARMUP_S} s${REWARM_S > 0 ? ` and ${REWARM_S} s unmeasured before each run` : ""}, ${INTERLEAVED ? `runs interleaved across peers, each round in its own order (--order-seed ${values["order-seed"]})${values.idle === "stop" ? " (the others' servers stopped meanwhile)" : ""}` : "peers one after another"}; bodies' ts_ms ${RISING_TS ? "rising at the expected send rate" : "one per signing"}${RATE ? `; about ${RATE} req/s offered (each connection waits 0-${(2 * (PACE_MS as number)).toFixed(1)} ms between an answer and its next request)` : "; as many requests as each server answers"}`
    : `undici, concurrency ${CONCURRENCY}, ${RUNS} runs x ${REQUESTS} requests per peer (median), warm-up ${WARMUP}`;
const latencyNote =
  GENERATOR === "wrk"
    ? "; latencies: the requests' own (wrk's correction for coordinated omission undone; wrk's corrected p99 in the last columns)"
    : "";
console.log(
  `\n${per}${latencyNote}; errors: ${GENERATOR === "wrk" ? "answers with status >= 400" : "answers failing the peer's check"}${INTERLEAVED ? "; req/s ratios: the median of the rounds' ratios" : ""}${storePinned ? `; the store's own server (Redis) pinned to CPU ${values["store-cpu"]}` : ""}\n`,
);
console.log(
  `| peer | req/s | p50 ms | p99 ms${GENERATOR === "wrk" ? " (own)" : ""} | max ms | errors | socket errors | vs raw | vs floor | vs MCP SDK | p99 vs raw | max vs raw | req per server CPU-s | wrk's p99 ms, corrected | its ratio to raw's |`,
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : "-");
// Interleaved, req/s ratios are the median of the rounds' own ratios (run i of one peer against run i of the
// other): a round's peers ran minutes apart at most, so drift of the shared machine cancels better than in a
// ratio of medians taken from different rounds.
const rpsRatio = (a: Row, b: Row | undefined) => {
  if (!b) return "-";
  if (!INTERLEAVED || a.rounds.length !== b.rounds.length) return ratio(a.rps, b.rps);
  return `${median(a.rounds.map((x, i) => x / (b.rounds[i] as number))).toFixed(2)}x`;
};
for (const r of rows) {
  console.log(
    `| ${r.peer} | ${r.rps.toFixed(0)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.maxms.toFixed(1)} | ${r.errors} | ${r.socket} | ${rpsRatio(r, raw)} | ${rpsRatio(r, floor)} | ${rpsRatio(r, sdk)} | ${ratio(r.p99ms, raw?.p99ms)} | ${ratio(r.maxms, raw?.maxms)} | ${r.perCpuS?.toFixed(0) ?? "-"} | ${r.correctedP99ms?.toFixed(2) ?? "-"} | ${r.correctedP99ms !== undefined ? ratio(r.correctedP99ms, raw?.correctedP99ms) : "-"} |`,
  );
}
// Where each server's time and I/O went, per request (medians of the runs): its CPU split into user and
// kernel, its read- and write-family system calls (sockets and files alike), and the store's own server
// (Redis on loopback).
if (rows.some((r) => r.perRequest)) {
  console.log(
    "\n| peer | server CPU µs/req (user + kernel) | read calls/req | write calls/req | bytes read/req | bytes written/req | store server CPU µs/req |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const q = r.perRequest;
    if (!q) continue;
    console.log(
      `| ${r.peer} | ${q.totalUs.toFixed(1)} (${q.userUs.toFixed(1)} + ${q.systemUs.toFixed(1)}) | ${q.syscr.toFixed(2)} | ${q.syscw.toFixed(2)} | ${q.rchar.toFixed(0)} | ${q.wchar.toFixed(0)} | ${r.storeUs?.toFixed(1) ?? "-"} |`,
    );
  }
}
// The tail's two factors against raw's: the mean (at saturation, C in flight / req/s, Little's law, so a slower
// server's mean is longer by its rate ratio alone) and the tail's shape (p99 / mean). p99 vs raw is about their
// product (each a median of the runs).
if (rows.some((r) => r.meanms !== undefined)) {
  console.log("\n| peer | mean ms | in flight (mean x req/s) | mean vs raw | p99 / mean | p99 / mean vs raw's | p99 vs raw |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  const shape = (r: Row) => (r.meanms ? r.p99ms / r.meanms : undefined);
  for (const r of rows) {
    if (!r.meanms) continue;
    const rawShape = raw ? shape(raw) : undefined;
    const own = shape(r) as number;
    console.log(
      `| ${r.peer} | ${r.meanms.toFixed(2)} | ${((r.meanms / 1000) * r.rps).toFixed(1)} | ${ratio(r.meanms, raw?.meanms)} | ${own.toFixed(2)} | ${ratio(own, rawShape)} | ${ratio(r.p99ms, raw?.p99ms)} |`,
    );
  }
}
// Each run's p99 beside the host's stalls of CPU 0 during it: a stall stops the server with every request in
// flight, so a run with more stalled ms has a longer tail whatever the server does.
if (rows.some((r) => r.tails.some((t) => t.stalls))) {
  console.log("\n| peer | each run: p99 ms (CPU 0 stalled ms per s; stalls >= 1 ms; longest ms) | stalled ms per s, median |");
  console.log("|---|---|---:|");
  for (const r of rows) {
    const each = r.tails.map((t) =>
      t.stalls
        ? `${t.p99ms.toFixed(1)} (${t.stalls.msPerS.toFixed(1)}; ${t.stalls.over1ms}; ${t.stalls.worstMs.toFixed(1)})`
        : t.p99ms.toFixed(1),
    );
    const stalled = r.tails.flatMap((t) => (t.stalls ? [t.stalls.msPerS] : []));
    console.log(`| ${r.peer} | ${each.join(" / ")} | ${stalled.length > 0 ? median(stalled).toFixed(1) : "-"} |`);
  }
}
// Each run's p99 beside what the guest itself ran on CPU 0 (bench/guest.ts): the stall probe outranks the
// guest's own threads, so their time on the server's CPU, and the server's major page faults, are read here.
if (rows.some((r) => r.tails.some((t) => t.guest))) {
  console.log(
    "\n| peer | each run: p99 ms (CPU 0 busy besides the server, ms per s; server major faults; the other process with the most CPU, ms per s) | busy besides, median | most CPU among other processes, median run |",
  );
  console.log("|---|---|---:|---|");
  for (const r of rows) {
    const runs = r.tails.flatMap((t) => (t.guest ? [{ p99ms: t.p99ms, guest: t.guest }] : []));
    const each = r.tails.map((t) =>
      t.guest
        ? `${t.p99ms.toFixed(1)} (${t.guest.othersMsPerS.toFixed(0)}; ${t.guest.serverMajflt}; ${t.guest.top[0] ? `${t.guest.top[0].comm} ${t.guest.top[0].msPerS.toFixed(0)}` : "-"})`
        : t.p99ms.toFixed(1),
    );
    const sorted = [...runs].sort((a, b) => a.guest.othersMsPerS - b.guest.othersMsPerS);
    const mid = sorted[Math.floor((sorted.length - 1) / 2)];
    const top = mid ? mid.guest.top.map((p) => `${p.comm} ${p.msPerS.toFixed(0)}`).join(", ") : "-";
    console.log(`| ${r.peer} | ${each.join(" / ")} | ${mid ? mid.guest.othersMsPerS.toFixed(0) : "-"} | ${top} |`);
  }
}
// Each run's p99 beside what the server saw inside: its longest event-loop delay and its own p99 per request (the
// upper bound of the bucket holding it). A request waits at least as long as its server's loop stood still; the
// part of wrk's p99 above the server's own lay in the kernel's queues or in the generator.
if (rows.some((r) => r.tails.some((t) => t.inside))) {
  console.log(
    "\n| peer | each run: p99 ms (server: longest loop delay ms, the monitor's 1 ms resolution included; the bucket its own p99 falls in, < ms; its requests >= 10 ms, %) | its own p99's bucket, median, < ms |",
  );
  console.log("|---|---|---:|");
  for (const r of rows) {
    const own = r.tails.flatMap((t) => (t.inside?.counts.some((n) => n > 0) ? [insideP99(t.inside)] : []));
    const each = r.tails.map((t) => {
      if (!t.inside) return t.p99ms.toFixed(1);
      const total = t.inside.counts.reduce((a, b) => a + b, 0);
      const slow = t.inside.counts.slice(INSIDE_BOUNDS_MS.indexOf(10) + 1).reduce((a, b) => a + b, 0);
      if (total === 0) return `${t.p99ms.toFixed(1)} (${t.inside.loopMaxMs.toFixed(1)}; -; -)`;
      return `${t.p99ms.toFixed(1)} (${t.inside.loopMaxMs.toFixed(1)}; ${boundLabel(insideP99(t.inside))}; ${((100 * slow) / total).toFixed(2)})`;
    });
    console.log(`| ${r.peer} | ${each.join(" / ")} | ${own.length > 0 ? boundLabel(median(own)) : "-"} |`);
  }
}
// Each run's p99 beside how long threads waited to run: the server's (its CPU shared with something of higher
// claim), the generator's (its replies read late: wrk's clock runs on), and the softirq threads', which carry
// the network's receive work for a CPU once it piles up (loopback packets wait for them).
if (rows.some((r) => r.tails.some((t) => t.guest))) {
  console.log(
    "\n| peer | each run: p99 ms (waited to run, ms per s: the server's event loop; its other threads; wrk; ksoftirqd/0; ksoftirqd/1) |",
  );
  console.log("|---|---|");
  for (const r of rows) {
    const each = r.tails.map((t) => {
      if (!t.guest) return t.p99ms.toFixed(1);
      const w = t.guest.waitMsPerS;
      return `${t.p99ms.toFixed(1)} (${w.server.toFixed(1)}; ${w.helpers.toFixed(1)}; ${Number.isNaN(w.wrk) ? "-" : w.wrk.toFixed(1)}; ${w.softirq0.toFixed(1)}; ${w.softirq1.toFixed(1)})`;
    });
    console.log(`| ${r.peer} | ${each.join(" / ")} |`);
  }
}
// Each run's p99 by wrk (its correction undone) beside the same requests' on the wire (bench/wire.ts): wrk's
// clock also runs while a request waits in wrk, and while its answer waits for wrk to read it; the wire's does not.
if (rows.some((r) => r.tails.some((t) => t.wire))) {
  const wireP99 = (r: Row) => {
    const each = r.tails.flatMap((t) => (t.wire ? [t.wire.p99ms] : []));
    return each.length > 0 ? median(each) : undefined;
  };
  const rawWire = raw ? wireP99(raw) : undefined;
  console.log(
    "\n| peer | each run: p99 ms (the wire's p99; its longest; the generator's turn-around p99 / longest, ms) | wire p99, median ms | wire p99 vs raw's | p99 vs raw's |",
  );
  console.log("|---|---|---:|---:|---:|");
  for (const r of rows) {
    const each = r.tails.map((t) =>
      t.wire
        ? `${t.p99ms.toFixed(1)} (${t.wire.p99ms.toFixed(2)}; ${t.wire.maxms.toFixed(1)}; ${t.wire.turnP99ms.toFixed(2)} / ${t.wire.turnMaxms.toFixed(1)}${t.wire.dropped > 0 ? `; ${t.wire.dropped} packets dropped` : ""})`
        : t.p99ms.toFixed(1),
    );
    const w = wireP99(r);
    console.log(
      `| ${r.peer} | ${each.join(" / ")} | ${w?.toFixed(2) ?? "-"} | ${w !== undefined ? ratio(w, rawWire) : "-"} | ${ratio(r.p99ms, raw?.p99ms)} |`,
    );
  }
}
// The tail in the runs without a slowed CPU. A server's CPU cost per request is mostly its code's (its GC was
// a few percent of its CPU, alike in slow and normal runs, round 3 session 15); a run whose requests per
// CPU-second fall well below the peer's median had a slower or stopped CPU (the host ran something else on it,
// which a guest without steal-time accounting charges to whatever was running). An assumption, not a
// measurement of each run: the table above keeps every run, and this one names the runs it keeps.
const QUIET = 0.85;
const quietP99 = (r: Row) => {
  const typical = median(r.tails.flatMap((t) => (t.perCpuS === undefined ? [] : [t.perCpuS])));
  const runs = r.tails.flatMap((t, i) => (t.perCpuS !== undefined && t.perCpuS >= QUIET * typical ? [i] : []));
  return { runs, p99ms: runs.length > 0 ? median(runs.map((i) => (r.tails[i] as Row["tails"][number]).p99ms)) : undefined };
};
if (rows.some((r) => r.tails.some((t) => t.perCpuS !== undefined))) {
  const rawQuiet = raw ? quietP99(raw).p99ms : undefined;
  console.log(
    `\n| peer | runs at >= ${QUIET}x its median req per CPU-s | their p99 ms (median) | p99 vs raw's (its kept runs) | every run's req per CPU-s |`,
  );
  console.log("|---|---:|---:|---:|---|");
  for (const r of rows) {
    const q = quietP99(r);
    console.log(
      `| ${r.peer} | ${q.runs.length} of ${r.tails.length} (${q.runs.map((i) => i + 1).join(", ")}) | ${q.p99ms?.toFixed(2) ?? "-"} | ${q.p99ms !== undefined ? ratio(q.p99ms, rawQuiet) : "-"} | ${r.tails.map((t) => t.perCpuS?.toFixed(0) ?? "-").join(" / ")} |`,
    );
  }
}
for (const kind of ["Redis", "SQLite"]) {
  const row = rows.find((r) => r.peer === `the floor, nonces in ${kind}`);
  if (floor && row) console.log(`the floor, nonces in ${kind} / the floor: ${rpsRatio(row, floor)} req/s`);
}
const hmac = rows.find((r) => r.peer === "smcp serve, memory");
for (const [name, target] of [
  ["smcp serve, memory, Ed25519 client", "target >= 0.4x"],
  ["smcp serve, memory, limiter + metrics", "target >= 0.9x"],
  ["smcp serve, memory, limiter + metrics + logs", "one JSON log line per request"],
  ["smcp serve, SQLite", "issue 22: target >= 0.7x"],
  ["smcp serve, Redis", "issue 22: target >= 0.8x"],
  ["smcp serve, PostgreSQL", "shared store, beside Redis"],
] as const) {
  const row = rows.find((r) => r.peer === name);
  if (hmac && row) {
    console.log(`${name} / smcp memory: ${rpsRatio(row, hmac)} req/s, ${ratio(row.p99ms, hmac.p99ms)} p99 (${target})`);
  }
}
// Every core (issue 22 item 4): two workers' requests per CPU-second against one process's, pinned to CPU 0 and,
// the like-for-like control, allowed on both CPUs as the workers are.
for (const label of ["SQLite", "Redis", "PostgreSQL"]) {
  const two = rows.find((r) => r.peer === `smcp serve --workers 2, ${label}, CPUs 0-1`);
  if (!two?.perCpuS) continue;
  for (const one of [`smcp serve, ${label}`, `smcp serve, ${label}, one process, CPUs 0-1`]) {
    const row = rows.find((r) => r.peer === one);
    if (row?.perCpuS)
      console.log(`${two.peer} / ${one}, per CPU-second: ${ratio(two.perCpuS, row.perCpuS)} (issue 22: within 10%)`);
  }
}
process.exit(0);
