// CPU per replay-cache reservation in the caller's process, store by store, without HTTP (issue 22 item 3):
// what a store's client side costs a request, apart from everything else a server does. Each "turn"
// queues --turn reservations at once, as one event-loop turn of a loaded server does, then waits for
// them all. Pinned to CPU 0; a Redis on loopback is pinned to CPU 1 for the run (given its CPUs back after),
// and its own CPU per reservation is reported beside the caller's. A full GC (--expose-gc) runs before each
// timed round, so one store's garbage is not collected in another's.
//   node --expose-gc --import tsx bench/reserve-cpu.ts [--stores memory,redis,redis-plain,map] [--turn 25] [--turns 4000] [--held N] [--dist]
//     [--before DIR: stores NAME@before (memory@before, redis@before) from another build's dist/ directory]
// - memory: smcp's MemoryNonceStore; redis: smcp's RedisNonceStore (one script call per turn);
// - redis-plain: one `SET key 1 PX ttl NX` per reservation (ioredis), as bench/peers/floor.ts does;
// - map: a JavaScript Map of key -> expiry, as the plain floor keeps its nonces.
// --held N first fills memory and map with N reservations (a loaded server holds a window's worth).
import { randomUUID } from "node:crypto";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { median } from "./load.js";
import { cpuSecondsOf, pinOther, pinSelf } from "./peer.js";
import { deleteByPattern, localRedisPid } from "./stores.js";

const { values } = parseArgs({
  options: {
    stores: { type: "string", default: "memory,redis,redis-plain,map" },
    turn: { type: "string", default: "25" },
    turns: { type: "string", default: "4000" },
    held: { type: "string", default: "0" },
    rounds: { type: "string", default: "3" },
    // Database 0: the keys carry a prefix of their own (bench/http.ts's stores count the keys of the highest
    // empty database, so this stays out of it).
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    dist: { type: "boolean", default: false },
    // Another build's dist/ (e.g. an older commit's worktree): its stores as memory@before, redis@before, in the
    // same interleaved rounds, for a before/after of one change.
    before: { type: "string" },
  },
});
const TURN = Number(values.turn);
const TURNS = Number(values.turns);
const HELD = Number(values.held);
const WINDOW_MS = 300_000;
const lib = (await import(values.dist ? "../dist/index.js" : "../src/index.js")) as typeof import("../src/index.js");
const redisLib = (await import(values.dist ? "../dist/redis.js" : "../src/redis.js")) as typeof import("../src/redis.js");
const BEFORE = values.before ? resolve(values.before) : undefined;
// Built against built: the sources through tsx would compare a loader's code with a build's.
if (BEFORE && !values.dist) throw new Error("--before compares builds: give --dist too");
const beforeLib = BEFORE ? ((await import(pathToFileURL(join(BEFORE, "index.js")).href)) as typeof lib) : undefined;
const beforeRedisLib = BEFORE ? ((await import(pathToFileURL(join(BEFORE, "redis.js")).href)) as typeof redisLib) : undefined;

type Reserve = (clientId: string, nonce: string, expiresAt: number) => Promise<boolean> | boolean;
interface Store {
  reserve: Reserve;
  close(): Promise<void>;
  /** The pid of the store's own server on this machine (Redis), to count its CPU. */
  serverPid?: number | undefined;
}

const gc = (globalThis as { gc?: () => void }).gc;
/** Pinned Redis servers, and what gives each its CPUs back (also on SIGINT and SIGTERM). */
const unpins = new Map<number, () => void>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const unpin of unpins.values()) unpin();
    process.exit(130);
  });
}

async function open(spec: string): Promise<Store> {
  const before = spec.endsWith("@before");
  if (before && !(beforeLib && beforeRedisLib)) throw new Error(`${spec} needs --before DIR (another build's dist/)`);
  const kind = before ? spec.slice(0, -"@before".length) : spec;
  if (before && kind !== "memory" && kind !== "redis") throw new Error(`${spec}: only memory and redis come from a build`);
  const { MemoryNonceStore } = before ? (beforeLib as typeof lib) : lib;
  const { RedisNonceStore } = before ? (beforeRedisLib as typeof redisLib) : redisLib;
  if (kind === "memory") {
    const store = new MemoryNonceStore();
    return { reserve: (c, n, e) => store.reserve(c, n, e), close: () => store.close() };
  }
  if (kind === "map") {
    const map = new Map<string, number>();
    return {
      reserve: (c, n, e) => {
        const key = `${c}\u0000${n}`;
        if (map.has(key)) return false;
        map.set(key, e);
        return true;
      },
      close: async () => map.clear(),
    };
  }
  const redis = new Redis(values.redis as string);
  const serverPid = await localRedisPid(redis, new URL(values.redis as string).host);
  if (serverPid && !unpins.has(serverPid)) {
    const unpin = pinOther(serverPid, "1");
    if (unpin) unpins.set(serverPid, unpin);
  }
  const prefix = `smcp-bench-reserve-${randomUUID().slice(0, 8)}:`;
  const cleanup = async () => {
    await deleteByPattern(redis, `${prefix}*`);
    redis.disconnect();
  };
  if (kind === "redis") {
    const store = new RedisNonceStore(redis, { prefix });
    return {
      reserve: (c, n, e) => store.reserve(c, n, e),
      close: async () => {
        await store.close();
        await cleanup();
      },
      serverPid,
    };
  }
  if (kind === "redis-plain") {
    return {
      reserve: async (c, n, e) =>
        (await redis.set(`${prefix}${c}\u0000${n}`, "1", "PX", Math.max(1, e - Date.now()), "NX")) === "OK",
      close: cleanup,
      serverPid,
    };
  }
  throw new Error(`unknown store ${spec}; use memory, redis, redis-plain or map (memory and redis also NAME@before)`);
}

/** Runs `turns` turns; the nonces are made before the clock starts, so only the reservations are timed. */
async function drive(store: Store, turns: number): Promise<{ fresh: number; cpuUs: number; serverUs: number; ms: number }> {
  const nonces = Array.from({ length: turns * TURN }, () => randomUUID());
  const expiresAt = Date.now() + WINDOW_MS;
  let fresh = 0;
  gc?.();
  const server0 = store.serverPid ? cpuSecondsOf(store.serverPid) : 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let t = 0; t < turns; t++) {
    const answers: (Promise<boolean> | boolean)[] = [];
    for (let i = 0; i < TURN; i++) answers.push(store.reserve("bench", nonces[t * TURN + i] as string, expiresAt));
    for (const answer of await Promise.all(answers)) if (answer) fresh++;
  }
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  const serverUs = store.serverPid ? (cpuSecondsOf(store.serverPid) - server0) * 1e6 : 0;
  return { fresh, cpuUs: cpu.user + cpu.system, serverUs, ms };
}

pinSelf(0);
if (!gc) console.error("run with node --expose-gc: without it, one store's garbage may be collected in another's round");
const kinds = (values.stores as string).split(",");
const stores = new Map<string, Store>();
interface Round {
  cpuUs: number;
  serverUs: number;
  perS: number;
}
const results = new Map<string, Round[]>(kinds.map((k) => [k, []]));
try {
  for (const kind of kinds) {
    const store = await open(kind);
    stores.set(kind, store);
    if (HELD > 0 && ["memory", "map"].includes(kind.replace(/@before$/, ""))) await drive(store, Math.ceil(HELD / TURN));
    await drive(store, 500); // warm-up
  }
  // Interleaved rounds: drift of the machine falls on every store alike.
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const kind of kinds) {
      const store = stores.get(kind) as Store;
      const r = await drive(store, TURNS);
      const n = TURNS * TURN;
      if (r.fresh !== n) throw new Error(`${kind}: ${n - r.fresh} fresh nonces refused`);
      (results.get(kind) as Round[]).push({ cpuUs: r.cpuUs / n, serverUs: r.serverUs / n, perS: (n / r.ms) * 1000 });
    }
  }
} finally {
  for (const store of stores.values()) await store.close();
  for (const unpin of unpins.values()) unpin();
}
console.log(
  `\n${TURNS * TURN} reservations per round in turns of ${TURN}, ${values.rounds} rounds interleaved, ${HELD} held first (memory, map); caller on CPU 0${unpins.size > 0 ? ", Redis pinned to CPU 1" : ""}${gc ? ", a full GC before each round" : ""}\n`,
);
console.log(
  "| store | caller CPU µs per reservation, each round | median | Redis server CPU µs, median | reservations/s, median |",
);
console.log("|---|---|---:|---:|---:|");
for (const [kind, rounds] of results) {
  const cpu = rounds.map((r) => r.cpuUs);
  const server = stores.get(kind)?.serverPid ? median(rounds.map((r) => r.serverUs)).toFixed(2) : "-";
  console.log(
    `| ${kind} | ${cpu.map((x) => x.toFixed(2)).join(" / ")} | ${median(cpu).toFixed(2)} | ${server} | ${median(rounds.map((r) => r.perS)).toFixed(0)} |`,
  );
}
process.exit(0);
