import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import type { NonceStore } from "../../src/index.js";
import { until } from "../helpers.js";

/** A replay store under test; `reopen` (durable stores) opens a second handle on the same data. */
export interface NonceFixture {
  store: NonceStore;
  reopen?: () => NonceStore;
}

/** The replay-cache contract: the same on every store (durable ones also across handles). */
export function nonceStoreConformance(
  name: string,
  make: () => Promise<NonceFixture>,
  options: { durable: boolean } = { durable: true },
): void {
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
      const { store } = await fresh();
      const nonce = randomUUID();
      assert.equal(await store.reserve("c1", nonce, later()), true);
      assert.equal(await store.reserve("c1", nonce, later()), false);
      assert.equal(await store.reserve("c2", nonce, later()), true);
      assert.equal(await store.reserve("__proto__", "constructor", later()), true);
      assert.equal(await store.reserve("__proto__", "constructor", later()), false);
      // Ids that would collide if simply concatenated stay distinct.
      assert.equal(await store.reserve("a:b", "c", later()), true);
      assert.equal(await store.reserve("a", "b:c", later()), true);
    });

    it("of many concurrent reservations of one pair, exactly one wins", async () => {
      const { store } = await fresh();
      const nonce = randomUUID();
      const results = await Promise.all(Array.from({ length: 100 }, () => store.reserve("c1", nonce, later())));
      assert.equal(results.filter(Boolean).length, 1);
    });

    it("a pair is free again once its time has passed", async () => {
      const { store } = await fresh();
      const nonce = randomUUID();
      assert.equal(await store.reserve("c1", nonce, Date.now() + 300), true);
      assert.equal(await store.reserve("c1", nonce, Date.now() + 300), false);
      await until(async () => store.reserve("c1", nonce, Date.now() + 60_000), 5000, "the pair to expire");
    });

    if (!options.durable) return;
    it("a reservation is seen through another handle on the same store", async () => {
      const fixture = await fresh();
      assert.ok(fixture.reopen, "a durable store fixture must provide reopen");
      const nonce = randomUUID();
      assert.equal(await fixture.store.reserve("c1", nonce, later()), true);
      const other = fixture.reopen();
      opened.push(other);
      assert.equal(await other.reserve("c1", nonce, later()), false);
    });
  });
}
