import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { type NonceStore, nonceStoreFill, SmcpError } from "../../src/index.js";
import { until } from "../helpers.js";

/** A replay store under test. */
export interface NonceFixture {
  store: NonceStore;
  /** Durable stores: a second handle on the same data. */
  reopen?: () => NonceStore;
  /** Stores on an injected clock: moves it forward. Without it the store follows real time. */
  advance?: (ms: number) => void;
  /** The store's clock (default `Date.now`). */
  now?: () => number;
  /** Stores that delete expired pairs in the background: deletes them now. */
  sweep?: () => void;
}

/** Options for {@link nonceStoreConformance}. */
export interface NonceConformanceOptions {
  durable: boolean;
  /** The fixtures have `advance`: expiry follows an injected clock (Redis follows its own). */
  injectedClock: boolean;
  /** A store with a small cap, filled by the cap test with pairs held for `lifetimeMs`. */
  capped?: () => Promise<NonceFixture & { lifetimeMs: number }>;
}

const isUnavailable = (error: unknown) => error instanceof SmcpError && error.code === "unavailable";

/** The replay-cache contract: the same on every store (durable ones also across handles). */
export function nonceStoreConformance(name: string, make: () => Promise<NonceFixture>, options: NonceConformanceOptions): void {
  describe(`NonceStore conformance: ${name}`, () => {
    const opened: NonceStore[] = [];
    const fresh = async () => {
      const fixture = await make();
      opened.push(fixture.store);
      return fixture;
    };
    after(async () => {
      for (const s of opened) await s.close();
    });
    const later = () => Date.now() + 60_000;

    it("a pair is free once, then a replay; pairs are per client", async () => {
      const { store, now = Date.now } = await fresh();
      const until = now() + 60_000;
      const nonce = randomUUID();
      assert.equal(await store.reserve("c1", nonce, until), true);
      assert.equal(await store.reserve("c1", nonce, until), false);
      assert.equal(await store.reserve("c2", nonce, until), true);
      assert.equal(await store.reserve("__proto__", "constructor", until), true);
      assert.equal(await store.reserve("__proto__", "constructor", until), false);
      // Ids that would collide if simply concatenated stay distinct.
      assert.equal(await store.reserve("a:b", "c", until), true);
      assert.equal(await store.reserve("a", "b:c", until), true);
      assert.equal(await store.reserve("1:a", "b", until), true);
      assert.equal(await store.reserve("1", "a:b", until), true);
      // Any text: empty, long, non-ASCII.
      for (const [c, n] of [
        ["", ""],
        ["c1", "x".repeat(10_000)],
        ["ключ", "nonce-✓-\u{1F600}"],
      ] as const) {
        assert.equal(await store.reserve(c, n, until), true);
        assert.equal(await store.reserve(c, n, until), false);
      }
    });

    it("of many concurrent reservations of one pair, exactly one wins", async () => {
      const { store, now = Date.now } = await fresh();
      const nonce = randomUUID();
      const results = await Promise.all(Array.from({ length: 100 }, () => store.reserve("c1", nonce, now() + 60_000)));
      assert.equal(results.filter(Boolean).length, 1);
    });

    it("many pairs reserved at once, each four times in a random order: exactly one wins per pair, and it is held", async () => {
      const { store, now = Date.now } = await fresh();
      const until = now() + 60_000;
      const pairs = Array.from({ length: 300 }, (_, i) => [`client-${i % 7}`, randomUUID()] as const);
      const attempts = pairs.flatMap((pair, i) => Array.from({ length: 4 }, () => ({ i, pair })));
      for (let k = attempts.length - 1; k > 0; k--) {
        const j = Math.floor(Math.random() * (k + 1));
        [attempts[k], attempts[j]] = [attempts[j] as (typeof attempts)[number], attempts[k] as (typeof attempts)[number]];
      }
      const results = await Promise.all(attempts.map(({ pair }) => store.reserve(pair[0], pair[1], until)));
      const wins = new Array<number>(pairs.length).fill(0);
      results.forEach((won, k) => {
        const i = (attempts[k] as (typeof attempts)[number]).i;
        if (won) wins[i] = (wins[i] ?? 0) + 1;
      });
      assert.deepEqual(wins, new Array<number>(pairs.length).fill(1));
      const again = await Promise.all(pairs.map(([c, n]) => store.reserve(c, n, until)));
      assert.ok(again.every((won) => won === false));
    });

    it("a pair is free again once its time has passed", async () => {
      const { store, advance, now = Date.now } = await fresh();
      const nonce = randomUUID();
      assert.equal(await store.reserve("c1", nonce, now() + 300), true);
      assert.equal(await store.reserve("c1", nonce, now() + 300), false);
      if (advance) advance(300);
      await until(async () => store.reserve("c1", nonce, now() + 60_000), 5000, "the pair to expire");
      assert.equal(await store.reserve("c1", nonce, now() + 60_000), false);
    });

    it("stats: held counts the reservations that won, until they expire", async () => {
      const { store, advance, now = Date.now } = await fresh();
      assert.ok(store.stats, "every store reports stats");
      const before = store.stats();
      assert.ok(Number.isInteger(before.held) && before.held >= 0);
      const lifetime = advance ? 10_000 : 1500;
      const nonces = Array.from({ length: 20 }, () => randomUUID());
      for (const n of nonces) assert.equal(await store.reserve("c1", n, now() + lifetime), true);
      for (const n of nonces) assert.equal(await store.reserve("c1", n, now() + lifetime), false);
      const during = store.stats();
      assert.equal(during.held, before.held + 20);
      for (const field of ["bytes", "capacityHeld", "capacityBytes"] as const) {
        const value = during[field];
        if (value !== undefined) assert.ok(Number.isFinite(value) && value > 0, `${field} = ${value}`);
      }
      if (during.capacityHeld !== undefined || during.capacityBytes !== undefined) {
        const fill = nonceStoreFill(during);
        assert.ok(fill !== undefined && fill >= 0 && fill < 1, `fill ${fill}`);
      }
      // Past the expiry and any bucket it was filed in.
      if (advance) advance(lifetime + 120_000);
      await until(async () => store.stats?.().held === before.held, 10_000, "held to drop back");
    });

    if (options.injectedClock) {
      it("the pair is refused until exactly its expiresAt and free from then on, across bucket edges", async () => {
        const { store, advance, now = Date.now } = await fresh();
        assert.ok(advance);
        const goTo = (time: number) => advance(time - now());
        // Expiries on each side of minute edges (the memory store's default bucket width), and one far out.
        const edge = Math.ceil((now() + 1) / 60_000) * 60_000;
        const expiries = [edge - 1, edge, edge + 1, edge + 59_999, edge + 60_000, edge + 60_001, edge + 240_000];
        const pairs = expiries.map((expiresAt) => ({ expiresAt, nonce: randomUUID() }));
        for (const p of pairs) assert.equal(await store.reserve("c1", p.nonce, p.expiresAt), true);
        for (const p of pairs) {
          goTo(p.expiresAt - 1);
          for (const q of pairs) {
            if (q.expiresAt >= p.expiresAt)
              assert.equal(await store.reserve("c1", q.nonce, q.expiresAt), false, `${q.expiresAt}`);
          }
          goTo(p.expiresAt);
          assert.equal(await store.reserve("c1", p.nonce, p.expiresAt + 90_000), true, `free at ${p.expiresAt}`);
          assert.equal(await store.reserve("c1", p.nonce, p.expiresAt + 90_000), false, "held again");
        }
      });

      it("agrees with a map of pairs to expiry over random reservations and clock moves", async () => {
        const { store, advance, now = Date.now } = await fresh();
        assert.ok(advance);
        const command = fc.oneof(
          fc.record({
            kind: fc.constant("reserve" as const),
            client: fc.constantFrom("c1", "c2", "a:b", "a"),
            nonce: fc.oneof(fc.constantFrom("n1", "n2", "b:n1", ""), fc.string({ maxLength: 8 })),
            lifetime: fc.oneof(fc.integer({ min: 1, max: 200_000 }), fc.constantFrom(1, 59_999, 60_000, 60_001)),
          }),
          fc.record({
            kind: fc.constant("advance" as const),
            ms: fc.oneof(fc.integer({ min: 0, max: 90_000 }), fc.constantFrom(1, 59_999, 60_000)),
          }),
        );
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
            // Pairs of earlier runs stay in the store: a run's own client ids keep it apart.
            const prefix = `run${run++}/`;
            const model = new Map<string, number>();
            for (const c of commands) {
              if (c.kind === "advance") {
                advance(c.ms);
                continue;
              }
              const key = JSON.stringify([c.client, c.nonce]);
              const expiresAt = now() + c.lifetime;
              const held = (model.get(key) ?? Number.NEGATIVE_INFINITY) > now();
              const won = await store.reserve(prefix + c.client, c.nonce, expiresAt);
              assert.equal(won, !held, `${key} at ${now()}`);
              if (won) model.set(key, expiresAt);
            }
          }),
          { numRuns: 60 },
        );
      });
    }

    if (options.capped) {
      const capped = options.capped;
      it("at its cap: new pairs fail closed (unavailable), nothing held is forgotten, and it recovers as pairs expire", async () => {
        const fixture = await capped();
        opened.push(fixture.store);
        const { store, advance, sweep, lifetimeMs, now = Date.now } = fixture;
        const accepted: string[] = [];
        let refusal: unknown;
        for (let round = 0; round < 2000 && refusal === undefined; round++) {
          const nonces = Array.from({ length: 50 }, () => randomUUID());
          const results = await Promise.allSettled(nonces.map((n) => store.reserve("c1", n, now() + lifetimeMs)));
          results.forEach((r, k) => {
            if (r.status === "fulfilled") {
              assert.equal(r.value, true);
              accepted.push(nonces[k] as string);
            } else refusal ??= r.reason;
          });
        }
        assert.ok(isUnavailable(refusal), `refused with ${String(refusal)}`);
        // Near the cap a store may still fit a pair here and there (SQLite: a row into a page with room); it is
        // full once it refuses every new pair. Each answer is a win or unavailable, nothing else.
        let refusedInARow = 0;
        for (let tries = 0; tries < 2000 && refusedInARow < 20; tries++) {
          const nonce = randomUUID();
          const answer = await store.reserve("c1", nonce, now() + lifetimeMs).catch((e: unknown) => e);
          assert.ok(answer === true || isUnavailable(answer), `a new pair answered ${String(answer)}`);
          if (answer === true) accepted.push(nonce);
          refusedInARow = answer === true ? 0 : refusedInARow + 1;
        }
        assert.equal(refusedInARow, 20, "full: new pairs refused");
        assert.ok(accepted.length >= 100, `held ${accepted.length} before the cap`);
        // Full: every held pair is still refused (a replay, or unavailable).
        for (const n of accepted) {
          const answer = await store.reserve("c1", n, now() + lifetimeMs).catch((e: unknown) => e);
          assert.ok(answer === false || isUnavailable(answer), `held pair answered ${String(answer)}`);
        }
        if (store.stats) {
          const fill = nonceStoreFill(store.stats());
          assert.ok(fill !== undefined && fill >= 0.5, `fill at the cap ${fill}`);
        }
        // Once the held pairs expire, new ones are taken again.
        if (advance) advance(lifetimeMs + 120_000);
        await until(
          async () => {
            sweep?.();
            return (await store.reserve("c1", randomUUID(), now() + lifetimeMs).catch(() => false)) === true;
          },
          lifetimeMs + 20_000,
          "room after expiry",
        );
      });
    }

    if (!options.durable) return;
    it("a reservation is seen through another handle on the same store, also when made at the same moment", async () => {
      const fixture = await fresh();
      assert.ok(fixture.reopen, "a durable store fixture must provide reopen");
      const nonce = randomUUID();
      assert.equal(await fixture.store.reserve("c1", nonce, later()), true);
      const other = fixture.reopen();
      opened.push(other);
      assert.equal(await other.reserve("c1", nonce, later()), false);
      const shared = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, k) => (k % 2 ? other : fixture.store).reserve("c1", shared, later())),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });
  });
}
