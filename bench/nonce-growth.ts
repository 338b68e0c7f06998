// The memory replay cache's table as one bucket fills from empty: what a rising rate costs, insert by insert.
// A bucket is presized for the previous one's count, so a steady rate never grows one; a rate that rises (a
// burst, a server back from idle, the bench's interleaved load) fills a bucket past its table. Each insert is
// timed: the slowest one is the event loop's longest stop for the cache, which every request in flight waits
// out. `--seal-from-slots` sets the size from which a full table is sealed beside a new one instead of rehashed
// (the default, 65,536; a value above --inserts / 0.75 rehashes every table, as before round 3 session 15).
//
//   node --import tsx bench/nonce-growth.ts [--inserts 2000000] [--rounds 3] [--seal-from-slots 65536]
import { parseArgs } from "node:util";
import { NonceTable } from "../src/backends/memory/nonce-table.js";
import { median } from "./load.js";

const { values } = parseArgs({
  options: {
    inserts: { type: "string", default: "2000000" },
    rounds: { type: "string", default: "3" },
    "seal-from-slots": { type: "string" },
  },
});
const INSERTS = Number(values.inserts);
const ROUNDS = Number(values.rounds);
const seal = values["seal-from-slots"] === undefined ? {} : { sealFromSlots: Number(values["seal-from-slots"]) };
if (!(Number.isSafeInteger(INSERTS) && INSERTS > 0 && Number.isSafeInteger(ROUNDS) && ROUNDS > 0)) {
  throw new Error("--inserts and --rounds are positive integers");
}
if (seal.sealFromSlots !== undefined && !Number.isSafeInteger(seal.sealFromSlots))
  throw new Error("--seal-from-slots is an integer");

// The digests, made before the clock starts (the table's own work is what is timed).
const words = new Uint32Array(INSERTS * 2);
for (let i = 0; i < words.length; i++) words[i] = (Math.random() * 2 ** 32) >>> 0;

const totals: number[] = [];
const worsts: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const table = new NonceTable({ bucketMs: 60_000, maxBytes: 256 * 1024 * 1024, ...seal });
  const now = 1_700_000_000_000;
  let worst = 0;
  const start = performance.now();
  for (let i = 0; i < INSERTS; i++) {
    const before = performance.now();
    // All into one bucket (one expiry), as a bucket filling at a rate its table was not sized for.
    table.reserve(words[2 * i] as number, words[2 * i + 1] as number, now + 300_000, now);
    const took = performance.now() - before;
    if (took > worst) worst = took;
  }
  totals.push(performance.now() - start);
  worsts.push(worst);
  console.error(
    `round ${round + 1}: ${INSERTS} inserts in ${totals.at(-1)?.toFixed(0)} ms, slowest insert ${worst.toFixed(1)} ms, ${(table.bytes / 1e6).toFixed(1)} MB`,
  );
}
console.log(
  `| inserts into one bucket | seal from slots | total ms (median of ${ROUNDS}) | µs per insert | slowest insert ms (median; worst round) |`,
);
console.log("|---:|---:|---:|---:|---:|");
console.log(
  `| ${INSERTS} | ${seal.sealFromSlots ?? "65536 (default)"} | ${median(totals).toFixed(0)} | ${((median(totals) * 1000) / INSERTS).toFixed(2)} | ${median(worsts).toFixed(1)} (${Math.max(...worsts).toFixed(1)}) |`,
);
