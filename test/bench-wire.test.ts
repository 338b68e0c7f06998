// bench/wire.ts reads tcpdump's lines into latencies on the wire: the figure BENCHMARKS.md sets beside wrk's.
// A pairing mistake would move every figure, so it is held to captures whose latencies are known.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { wireLatencies } from "../bench/wire.js";

const PORT = 41234;

/** One `tcpdump -tt -n -q` line: a packet of `length` data bytes from `from` to `to` at `atMs`. */
function line(atMs: number, from: number, to: number, length: number): string {
  return `${(atMs / 1000).toFixed(6)} IP 127.0.0.1.${from} > 127.0.0.1.${to}: tcp ${length}`;
}

describe("bench/wire.ts: latencies from a capture", () => {
  it("pairs each request with its connection's next answer, across interleaved connections", () => {
    const text = [
      line(1000, 50001, PORT, 428),
      line(1000.5, 50002, PORT, 428),
      line(1003, PORT, 50002, 443), // 2.5 ms
      line(1004, PORT, 50001, 443), // 4 ms
      line(1004.2, 50001, PORT, 428), // turn-around 0.2 ms
      line(1004.2, 50001, PORT, 0), // an ACK: no data, ignored
      line(1010.2, PORT, 50001, 300), // 6 ms
      line(1010.3, PORT, 50001, 143), // the same answer's second packet: no new pair
      line(1011, 50002, PORT, 428), // turn-around 8 ms
      line(1012, PORT, 50002, 443), // 1 ms
      line(1013, 50003, PORT, 428), // never answered in the capture: no pair
      line(1014, PORT, 50009, 443), // an answer to a request sent before the capture: no pair
      "garbage that is not a packet",
      "",
    ].join("\n");
    const w = wireLatencies(text, PORT, 3);
    assert.ok(w);
    assert.equal(w.requests, 4);
    assert.equal(w.maxms.toFixed(3), "6.000");
    // Sorted: 1, 2.5, 4, 6; wrk's rule (0-based index floor(p * n)): the median is the 3rd, p99 the 4th.
    assert.equal(w.p50ms.toFixed(3), "4.000");
    assert.equal(w.p99ms.toFixed(3), "6.000");
    assert.equal(w.turnMaxms.toFixed(3), "8.000");
    assert.equal(w.dropped, 3);
  });

  it("finds nothing in a capture without an answered request", () => {
    assert.equal(wireLatencies("", PORT), undefined);
    assert.equal(wireLatencies(line(1, 50001, PORT, 428), PORT), undefined);
  });

  it("recovers every latency and turn-around of generated captures (IPv4 and IPv6, ACKs, answers in several packets)", () => {
    const request = fc.record({
      latency: fc.integer({ min: 1, max: 500_000 }),
      turn: fc.integer({ min: 1, max: 5000 }),
      // An answer in 1-3 packets, 1-50 µs apart; ACKs (no data) between.
      parts: fc.integer({ min: 1, max: 3 }),
      acks: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(fc.array(request, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (connections, v6) => {
          const host = v6 ? "::1" : "127.0.0.1";
          const at = (us: number, from: number, to: number, length: number) =>
            `${(us / 1e6).toFixed(6)} ${v6 ? "IP6" : "IP"} ${host}.${from} > ${host}.${to}: tcp ${length}`;
          // Times in µs so that the printed 6 decimals of a second are exact.
          const packets: { us: number; text: string }[] = [];
          const latencies: number[] = [];
          const turns: number[] = [];
          connections.forEach((requests, c) => {
            let us = 1_000_000 + c;
            requests.forEach(({ latency, turn, parts, acks }, i) => {
              packets.push({ us, text: at(us, 40000 + c, PORT, 428) });
              if (acks) packets.push({ us: us + 0.5, text: at(us, PORT, 40000 + c, 0) });
              for (let k = 0; k < parts; k++)
                packets.push({ us: us + latency + k, text: at(us + latency + k, PORT, 40000 + c, k === 0 ? 300 : 70) });
              latencies.push(latency / 1000);
              // From the answer's first packet (its departure) to the next request's.
              if (i + 1 < requests.length) turns.push((parts + turn) / 1000);
              us += latency + parts + turn;
            });
          });
          packets.sort((a, b) => a.us - b.us);
          const w = wireLatencies(packets.map((p) => p.text).join("\n"), PORT);
          assert.ok(w);
          const rank = (sorted: number[], p: number) =>
            sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
          latencies.sort((a, b) => a - b);
          turns.sort((a, b) => a - b);
          assert.equal(w.requests, latencies.length);
          assert.equal(w.maxms.toFixed(3), (latencies[latencies.length - 1] as number).toFixed(3));
          assert.equal(w.p50ms.toFixed(3), rank(latencies, 0.5).toFixed(3));
          assert.equal(w.p99ms.toFixed(3), rank(latencies, 0.99).toFixed(3));
          if (turns.length > 0) {
            assert.equal(w.turnP99ms.toFixed(3), rank(turns, 0.99).toFixed(3));
            assert.equal(w.turnMaxms.toFixed(3), (turns[turns.length - 1] as number).toFixed(3));
          } else assert.ok(Number.isNaN(w.turnMaxms));
        },
      ),
      { numRuns: 200 },
    );
  });
  it("reads any text without throwing: random lines, prefixes and byte mutations of a capture", () => {
    const capture = [
      line(1000, 50001, PORT, 428),
      line(1002, PORT, 50001, 443),
      line(1002.5, 50001, PORT, 428),
      line(1004, PORT, 50001, 443),
      line(1004.1, 50002, PORT, 428),
      line(1009, PORT, 50002, 443),
    ].join("\n");
    const full = wireLatencies(capture, PORT);
    assert.equal(full?.requests, 3);
    const checkWindow = (text: string) => {
      const w = wireLatencies(text, PORT);
      if (w === undefined) return;
      assert.ok(w.requests >= 1);
      assert.ok(w.p50ms <= w.p99ms && w.p99ms <= w.maxms, "percentiles in order");
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc
            .array(fc.constantFrom(...capture.split("\n"), "", " ", "IP", "tcp", `IP6 ::1.1 > ::1.${PORT}: tcp 5`), {
              maxLength: 30,
            })
            .map((l) => l.join("\n")),
          fc.nat({ max: capture.length }).map((n) => capture.slice(0, n)),
          fc
            .array(fc.tuple(fc.nat({ max: capture.length - 1 }), fc.string({ minLength: 0, maxLength: 3 })), { maxLength: 6 })
            .map((edits) => edits.reduce((text, [at, put]) => text.slice(0, at) + put + text.slice(at + 1), capture)),
        ),
        (text) => {
          checkWindow(text);
          // A prefix never pairs more requests than the whole capture.
          const prefix = wireLatencies(capture.slice(0, text.length % (capture.length + 1)), PORT);
          assert.ok((prefix?.requests ?? 0) <= 3);
        },
      ),
      { numRuns: 500 },
    );
  });
});
