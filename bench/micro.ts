// Micro: canonicalize + HMAC of a ~1 KB envelope (what a signer does) and
// lossless parse + HMAC verify of its text (what a verifier does), beside
// JSON.stringify + JSON.parse of the same object. Median of 7 rounds.
//
//   node --import tsx bench/micro.ts [--iterations 100000]
import { createHmac } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { canonicalize, parseLossless } from "../src/protocol/canonical.js";
import { toKeys } from "../src/protocol/keyring.js";
import { signCanonical, signMessage, verifyCanonical } from "../src/protocol/sign.js";
import { median } from "./load.js";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "100000" } } });
const N = Number(values.iterations);
const key = toKeys("bench-client-secret-0123456789", "bench")[0] as ReturnType<typeof toKeys>[number];

const envelope = {
  v: "mcp/0.1",
  request_id: "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b",
  ts_ms: 1795270000000,
  client_id: "agent-7",
  server_id: "weather-svc",
  tool: "report",
  args: {
    title: "Quarterly numbers for the north-east region",
    pages: 12,
    ratio: 0.3333333333333333,
    tags: ["finance", "q3", "north-east", "draft", "internal"],
    rows: Array.from({ length: 12 }, (_, i) => ({ id: i, label: `row ${i}`, value: i * 1.25, ok: i % 2 === 0 })),
    note: "Café – naïve résumé",
  },
  nonce: "0b9d8c7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e",
};
const signed = signMessage(envelope, key);
const text = signed.body;
console.log(`envelope: ${Buffer.byteLength(text)} bytes canonical`);

function measure(name: string, op: () => unknown): number {
  for (let i = 0; i < N / 10; i++) op(); // warm-up
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) op();
    rounds.push(((performance.now() - t0) * 1e6) / N);
  }
  const ns = median(rounds);
  console.log(`${name.padEnd(48)} ${ns.toFixed(0).padStart(7)} ns/op`);
  return ns;
}

let sink = 0;
const baseline = measure("JSON.stringify + JSON.parse", () => {
  sink += (JSON.parse(JSON.stringify(envelope)) as { ts_ms: number }).ts_ms;
});
const sign = measure("canonicalize + HMAC-SHA256 (sign)", () => {
  sink += signCanonical(key, canonicalize(envelope)).length;
});
const verify = measure("parseLossless + HMAC-SHA256 verify (verify)", () => {
  const parsed = parseLossless(text, { omitTopLevelKey: "signature" });
  sink += verifyCanonical([key], parsed.canonical, signed.message.signature) ? 1 : 0;
});
measure("  of which canonicalize", () => {
  sink += canonicalize(envelope).length;
});
measure("  of which parseLossless", () => {
  sink += parseLossless(text).canonical.length;
});
measure("  of which HMAC-SHA256 hex of the canonical text", () => {
  sink += createHmac("sha256", key.bytes).update(text).digest("hex").length;
});
console.log(`\nsign   / baseline: ${(sign / baseline).toFixed(2)}x (target <= 3x)`);
console.log(`verify / baseline: ${(verify / baseline).toFixed(2)}x`);
if (sink === 0) console.log("");
