// CPU per replay-cache reservation in the caller's process, store by store, without HTTP (issue 22 item 3):
// what a store's client side costs a request, apart from everything else a server does. Each "turn"
// queues --turn reservations at once, as one event-loop turn of a loaded server does, then waits for
// them all. Pinned to CPU 0 (the store's server, Redis, is pinned nowhere by this script).
//   node --import tsx bench/reserve-cpu.ts [--stores memory,redis,redis-plain,map] [--turn 25] [--turns 4000] [--held N] [--dist]
// - memory: smcp's MemoryNonceStore; redis: smcp's RedisNonceStore (one script call per turn);
// - redis-plain: one `SET key 1 PX ttl NX` per reservation (ioredis), as bench/peers/floor.ts does;
// - map: a JavaScript Map of key -> expiry, as the plain floor keeps its nonces.
// --held N first fills memory and map with N reservations (a loaded server holds a window's worth).
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { pinSelf } from "./peer.js";

const { values } = parseArgs({
  options: {
    stores: { type: "string", default: "memory,redis,redis-plain,map" },
    turn: { type: "string", default: "25" },
    turns: { type: "string", default: "4000" },
    held: { type: "string", default: "0" },
    rounds: { type: "string", default: "3" },
    redis: { type: "string", default: "redis://127.0.0.1:6379/15" },
    dist: { type: "boolean", default: false },
  },
});
const TURN = Number(values.turn);
const TURNS = Number(values.turns);
const HELD = Number(values.held);
const WINDOW_MS = 300_000;
const lib = (await import(values.dist ? "../dist/index.js" : "../src/index.js")) as typeof import("../src/index.js");
const redisLib = (await import(values.dist ? "../dist/redis.js" : "../src/redis.js")) as typeof import("../src/redis.js");

type Reserve = (clientId: string, nonce: string, expiresAt: number) => Promise<boolean> | boolean;
interface Store {
  reserve: Reserve;
  close(): Promise<void>;
}

async function open(kind: string): Promise<Store> {
  if (kind === "memory") {
    const store = new lib.MemoryNonceStore();
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
  const prefix = `smcp-bench-reserve-${randomUUID().slice(0, 8)}:`;
  const cleanup = async () => {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
    redis.disconnect();
  };
  if (kind === "redis") {
    const store = new redisLib.RedisNonceStore(redis, { prefix });
    return {
      reserve: (c, n, e) => store.reserve(c, n, e),
      close: async () => {
        await store.close();
        await cleanup();
      },
    };
  }
  if (kind === "redis-plain") {
    return {
      reserve: async (c, n, e) =>
        (await redis.set(`${prefix}${c}\u0000${n}`, "1", "PX", Math.max(1, e - Date.now()), "NX")) === "OK",
      close: cleanup,
    };
  }
  throw new Error(`unknown store ${kind}; use memory, redis, redis-plain or map`);
}

/** Runs `turns` turns; the nonces are made before the clock starts, so only the reservations are timed. */
async function drive(store: Store, turns: number): Promise<{ fresh: number; cpuUs: number; ms: number }> {
  const nonces = Array.from({ length: turns * TURN }, () => randomUUID());
  const expiresAt = Date.now() + WINDOW_MS;
  let fresh = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let t = 0; t < turns; t++) {
    const answers: (Promise<boolean> | boolean)[] = [];
    for (let i = 0; i < TURN; i++) answers.push(store.reserve("bench", nonces[t * TURN + i] as string, expiresAt));
    for (const answer of await Promise.all(answers)) if (answer) fresh++;
  }
  const cpu = process.cpuUsage(cpu0);
  return { fresh, cpuUs: cpu.user + cpu.system, ms: performance.now() - t0 };
}

pinSelf(0);
const kinds = (values.stores as string).split(",");
const stores = new Map<string, Store>();
for (const kind of kinds) {
  const store = await open(kind);
  if (HELD > 0 && (kind === "memory" || kind === "map")) await drive(store, Math.ceil(HELD / TURN));
  await drive(store, 500); // warm-up
  stores.set(kind, store);
}
const results = new Map<string, number[]>(kinds.map((k) => [k, []]));
// Interleaved rounds: drift of the machine falls on every store alike.
for (let round = 0; round < Number(values.rounds); round++) {
  for (const kind of kinds) {
    const r = await drive(stores.get(kind) as Store, TURNS);
    if (r.fresh !== TURNS * TURN) throw new Error(`${kind}: ${TURNS * TURN - r.fresh} fresh nonces refused`);
    (results.get(kind) as number[]).push(r.cpuUs / (TURNS * TURN));
  }
}
for (const store of stores.values()) await store.close();
console.log(
  `\n${TURNS * TURN} reservations per round in turns of ${TURN}, ${values.rounds} rounds interleaved, ${HELD} held first (memory, map)\n`,
);
console.log("| store | CPU µs per reservation, each round | median |\n|---|---|---:|");
for (const [kind, us] of results) {
  const sorted = [...us].sort((a, b) => a - b);
  console.log(
    `| ${kind} | ${us.map((x) => x.toFixed(2)).join(" / ")} | ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)} |`,
  );
}
process.exit(0);
