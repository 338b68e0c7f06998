import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { NonceTable, SLOT_BYTES } from "../src/backends/memory/nonce-table.js";
import { MemoryNonceStore, SmcpError, SmcpUsageError } from "../src/index.js";

const unavailable = (error: unknown) => error instanceof SmcpError && error.code === "unavailable";

/** Random 32-bit words, a pair per entry (digests without the hashing, for layout tests). */
function words(count: number): Uint32Array {
  const out = new Uint32Array(count * 2);
  for (let i = 0; i < out.length; i += 16_384)
    out.set(new Uint32Array(randomBytes(Math.min(16_384, out.length - i) * 4).buffer), i);
  return out;
}

/**
 * Thousands of reservations of 10,001 keys with lifetimes up to 300 ms, the clock moving about 0.08 ms a
 * command: into 200 ms buckets, enough to fill, seal and drop tables in every run.
 */
const growthCommands = fc.array(
  fc.oneof(
    {
      weight: 60,
      arbitrary: fc.record({
        kind: fc.constant("reserve" as const),
        key: fc.nat(10_000),
        lifetime: fc.integer({ min: 1, max: 300 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.nat(10) }) },
  ),
  { minLength: 4_000, maxLength: 8_000, size: "max" },
);

/**
 * Runs `commands` against `table` and a map of each key's expiry: a held key is refused, a free one accepted.
 * With `maxBytes`, `unavailable` may refuse any reservation (the cap), and the table never holds more bytes.
 */
function againstModel(
  table: NonceTable,
  commands: readonly ({ kind: "reserve"; key: number; lifetime: number } | { kind: "advance"; ms: number })[],
  options: { maxBytes: number | undefined },
): void {
  let now = 1_000_000;
  const held = new Map<number, number>();
  for (const c of commands) {
    if (c.kind === "advance") {
      now += c.ms;
      continue;
    }
    const expiresAt = now + c.lifetime;
    let won: boolean;
    try {
      won = table.reserve(c.key + 1, (c.key * 2654435761) >>> 0, expiresAt, now);
    } catch (error) {
      if (options.maxBytes === undefined || !unavailable(error)) throw error;
      continue;
    }
    assert.equal(won, !((held.get(c.key) ?? 0) > now), `key ${c.key} at ${now}`);
    if (won) held.set(c.key, expiresAt);
    if (options.maxBytes !== undefined) assert.ok(table.bytes <= options.maxBytes, `bytes ${table.bytes}`);
  }
}

describe("memory replay cache: digest table", () => {
  it("with colliding digests, answers exactly as a map of digests would; a collision only ever refuses a fresh pair", async () => {
    // Keys 0..23 share 6 digests, so collisions are frequent (none all-zero: the table files that one as (1, 0)).
    // Buckets of 10 s, so moves cross many of them.
    const digest = (k: number) => [(k % 3) + 1, k % 2 === 0 ? 0 : 7] as const;
    const command = fc.oneof(
      fc.record({ kind: fc.constant("reserve" as const), key: fc.nat(23), lifetime: fc.integer({ min: 1, max: 40_000 }) }),
      fc.record({ kind: fc.constant("advance" as const), ms: fc.oneof(fc.nat(25_000), fc.constantFrom(1, 9_999, 10_000)) }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 80 }), (commands) => {
        const table = new NonceTable({ bucketMs: 10_000, maxBytes: 1 << 20 });
        let now = 1_000_000;
        const byKey = new Map<number, number>();
        const byDigest = new Map<string, number>();
        for (const c of commands) {
          if (c.kind === "advance") {
            now += c.ms;
            continue;
          }
          const [lo, hi] = digest(c.key);
          const d = `${lo}/${hi}`;
          const expiresAt = now + c.lifetime;
          const won = table.reserve(lo, hi, expiresAt, now);
          assert.equal(won, !((byDigest.get(d) ?? 0) > now), "as a map of digests");
          if ((byKey.get(c.key) ?? 0) > now) assert.equal(won, false, "a replay is never accepted");
          if (won) {
            byKey.set(c.key, expiresAt);
            byDigest.set(d, expiresAt);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("while buckets grow, by rehashing or by sealing full tables, answers exactly as a map of digests would", async () => {
    // Thousands of distinct digests into 200 ms buckets whose 1,024-slot tables are sealed when full (768 entries),
    // with lifetimes up to 300 ms and the clock moving about 0.08 ms a command: each run seals tables, takes
    // over expired pairs and drops buckets (checked by mutation: lookups that skip full tables fail it).
    fc.assert(
      fc.property(growthCommands, (commands) => {
        const table = new NonceTable({ bucketMs: 200, maxBytes: 16 << 20, sealFromSlots: 1_024 });
        againstModel(table, commands, { maxBytes: undefined });
      }),
      { numRuns: 40, endOnFailure: true },
    );
  });

  it("near maxBytes, while tables are sealed or rehashed, never accepts a held pair, only refuses with unavailable, and stays under the cap", async () => {
    fc.assert(
      fc.property(
        growthCommands,
        fc.integer({ min: 3 * 1024 * SLOT_BYTES, max: 12 * 1024 * SLOT_BYTES }),
        (commands, maxBytes) => {
          const table = new NonceTable({ bucketMs: 200, maxBytes, sealFromSlots: 1_024 });
          againstModel(table, commands, { maxBytes });
        },
      ),
      { numRuns: 40, endOnFailure: true },
    );
  });

  it("with buckets longer than 65,535 ms, a pair is held past its expiry by less than the offset unit, never less", () => {
    const unit = Math.ceil(600_000 / 65_535); // 10 ms
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2_000_000 }), fc.integer({ min: 0, max: 1_000_000 }), (lifetime, start) => {
        const table = new NonceTable({ bucketMs: 600_000, maxBytes: 1 << 20 });
        const expiresAt = start + lifetime;
        assert.equal(table.reserve(5, 6, expiresAt, start), true);
        assert.equal(table.reserve(5, 6, expiresAt, expiresAt - 1), false);
        assert.equal(table.reserve(5, 6, expiresAt + 50, expiresAt + unit - 1), true);
      }),
      { numRuns: 300 },
    );
  });

  it("a small bucket grows by rehashing: every held pair is kept, expired ones are left out, and they are free again", () => {
    const table = new NonceTable({ bucketMs: 60_000, maxBytes: 64 << 20 });
    const n = 10_000;
    const w = words(n);
    const now = 60_000_000;
    // One bucket: expiries spread over its first 10 s; the first half expire at now + 5 s.
    for (let i = 0; i < n; i++) {
      assert.equal(table.reserve(w[2 * i] as number, w[2 * i + 1] as number, now + 1 + i, now), true);
    }
    assert.equal(table.held, n);
    const later = now + 1 + n / 2;
    // More pairs into the same bucket force a rehash (its table is below 65,536 slots), which drops the expired half.
    const extra = words(n);
    for (let i = 0; i < n; i++) {
      assert.equal(table.reserve(extra[2 * i] as number, extra[2 * i + 1] as number, now + 50_000, later), true);
    }
    assert.ok(table.held < 2 * n, `held ${table.held}: a rehash left the expired pairs out`);
    for (let i = 0; i < n; i++) {
      const live = now + 1 + i > later;
      assert.equal(table.reserve(w[2 * i] as number, w[2 * i + 1] as number, now + 55_000, later), !live, `entry ${i}`);
      assert.equal(table.reserve(extra[2 * i] as number, extra[2 * i + 1] as number, now + 55_000, later), false);
    }
  });

  it("a large bucket's full table is sealed, not rehashed: a new table takes its new pairs, and every pair is still found", () => {
    // Rehashing a table of a million pairs stopped every request for 70-190 ms (BENCHMARKS, round 3 session 15).
    const table = new NonceTable({ bucketMs: 60_000, maxBytes: 64 << 20 });
    const n = 60_000;
    const w = words(n);
    const now = 60_000_000;
    // One bucket: expiries spread over its first 30 s.
    const expiry = (i: number) => now + 1 + Math.floor(i / 2);
    for (let i = 0; i < n; i++) {
      assert.equal(table.reserve(w[2 * i] as number, w[2 * i + 1] as number, expiry(i), now), true);
    }
    // Rehashed up to 65,536 slots; past 49,152 pairs (0.75 of them) that table is kept as it is, beside a new one
    // of 131,072: a rehash would have left one table of 131,072.
    assert.equal(table.bytes, (65_536 + 131_072) * SLOT_BYTES);
    assert.equal(table.held, n);
    // Every pair is held in whichever table has it, and each is free again once it has expired.
    const later = now + 1 + n / 4;
    for (let i = 0; i < n; i++) {
      const live = expiry(i) > later;
      assert.equal(table.reserve(w[2 * i] as number, w[2 * i + 1] as number, now + 55_000, later), !live, `entry ${i}`);
    }
    for (let i = 0; i < n; i++)
      assert.equal(table.reserve(w[2 * i] as number, w[2 * i + 1] as number, now + 56_000, later), false);
  });

  it("at a steady rate with the default window, buckets stay presized and hold a pair in at most 32 bytes", () => {
    // 800 requests a second for 15 minutes of clock, ts_ms within ±2 s of the server's clock: expiry ≈ now + 300 s.
    const table = new NonceTable({ bucketMs: 60_000, maxBytes: 256 << 20 });
    const rate = 800;
    const w = words(rate * 60);
    let now = 1_700_000_000_000;
    let worst = 0;
    for (let second = 0; second < 900; second++) {
      for (let k = 0; k < rate; k++) {
        const i = (second * rate + k) % (rate * 60);
        // Fresh words each minute: flip a bit per minute so no pair repeats.
        const lo = ((w[2 * i] as number) ^ Math.floor(second / 60)) >>> 0;
        const skew = ((k * 7919) % 4001) - 2000;
        assert.equal(table.reserve(lo, w[2 * i + 1] as number, now + skew + 300_001, now), true);
        now += 1000 / rate;
      }
      if (second >= 420) worst = Math.max(worst, table.bytes / table.held);
    }
    assert.ok(worst <= 32, `bytes per held pair up to ${worst.toFixed(1)}`);
    // Held: about a window and a bucket's worth, never more than a window and two buckets.
    assert.ok(table.held <= rate * (302 + 120), `held ${table.held}`);
  });

  it("at the cap with a steady rate: refuses only once held is near capacityHeld, and keeps serving as buckets expire", () => {
    const maxBytes = 1 << 20;
    const table = new NonceTable({ bucketMs: 60_000, maxBytes });
    // Asks for more than fits: capacityHeld / 300 s would be the rate that fits.
    const rate = Math.ceil((table.capacityHeld / 300) * 1.3);
    let now = 1_700_000_000_000;
    let firstRefusalHeld = 0;
    let refused = 0;
    let acceptedLate = 0;
    let seq = 0;
    for (let second = 0; second < 700; second++) {
      for (let k = 0; k < rate; k++) {
        seq++;
        try {
          const won = table.reserve(seq, (seq * 2654435761) >>> 0, now + 300_001, now);
          assert.equal(won, true);
          if (second > 500) acceptedLate++;
        } catch (error) {
          assert.ok(unavailable(error));
          if (refused++ === 0) firstRefusalHeld = table.held;
        }
        now += 1000 / rate;
      }
      assert.ok(table.bytes <= maxBytes);
    }
    assert.ok(refused > 0);
    assert.ok(firstRefusalHeld >= 0.8 * table.capacityHeld, `first refusal at ${firstRefusalHeld} of ${table.capacityHeld}`);
    assert.ok(acceptedLate > 0, "still serving once buckets expire");
  });

  it("checks its options and inputs", async () => {
    assert.throws(() => new NonceTable({ bucketMs: 0, maxBytes: 1 << 20 }), SmcpUsageError);
    assert.throws(() => new NonceTable({ bucketMs: 1.5, maxBytes: 1 << 20 }), SmcpUsageError);
    assert.throws(() => new NonceTable({ bucketMs: 1000, maxBytes: SLOT_BYTES }), SmcpUsageError);
    assert.throws(() => new MemoryNonceStore({ maxBytes: Number.NaN }), SmcpUsageError);
    const store = new MemoryNonceStore();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(store.reserve("c", "n", bad), SmcpUsageError);
    }
    assert.equal(store.size, 0);
  });

  it("stats report the tables' bytes and the cap", async () => {
    let now = 1_000_000;
    const store = new MemoryNonceStore({ maxBytes: 1 << 20, now: () => now });
    assert.deepEqual(store.stats(), {
      held: 0,
      capacityHeld: Math.floor(((1 << 20) / SLOT_BYTES) * 0.6),
      bytes: 0,
      capacityBytes: 1 << 20,
    });
    assert.equal(await store.reserve("c", "n", now + 1000), true);
    const one = store.stats();
    assert.equal(one.held, 1);
    assert.equal(one.bytes, 1024 * SLOT_BYTES);
    now += 61_000;
    assert.deepEqual(store.stats(), { ...one, held: 0, bytes: 0 });
  });
});
