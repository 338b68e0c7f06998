// Micro: canonicalize + HMAC of a ~1 KB envelope (what a signer does) and
// lossless parse + HMAC verify of its text (what a verifier does), beside
// JSON.stringify + JSON.parse of the same object; then the same with Ed25519
// (SPEC §7), whose sign and verify cost far more. Median of 7 rounds.
//
//   node --import tsx bench/micro.ts [--iterations 100000] [--ed25519-iterations 5000]
import { createHmac } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { canonicalize } from "../src/protocol/canonical.js";
import { type HmacKey, type Key, toKeys } from "../src/protocol/keys.js";
import { parseLossless } from "../src/protocol/parse.js";
import { signCanonical, signMessage, verifyCanonical } from "../src/protocol/sign.js";
import { BENCH } from "./fixtures.js";
import { median } from "./load.js";

const { values } = parseArgs({
  options: { iterations: { type: "string", default: "100000" }, "ed25519-iterations": { type: "string", default: "5000" } },
});
const N = Number(values.iterations);
const N_ED25519 = Number(values["ed25519-iterations"]);
const key = toKeys("bench-client-secret-0123456789", "bench")[0] as HmacKey;
const edKey = toKeys(BENCH.ed25519ClientSecret, "bench")[0] as Key;

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

function measure(name: string, op: () => unknown, n = N): number {
  for (let i = 0; i < n / 10; i++) op(); // warm-up
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) op();
    rounds.push(((performance.now() - t0) * 1e6) / n);
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
const edSigned = signMessage(envelope, edKey);
const edSign = measure(
  "canonicalize + Ed25519 (sign)",
  () => {
    sink += signCanonical(edKey, canonicalize(envelope)).length;
  },
  N_ED25519,
);
const edVerify = measure(
  "parseLossless + Ed25519 verify (verify)",
  () => {
    const parsed = parseLossless(edSigned.body, { omitTopLevelKey: "signature" });
    sink += verifyCanonical([edKey], parsed.canonical, edSigned.message.signature) ? 1 : 0;
  },
  N_ED25519,
);
console.log(`\nsign   / baseline: ${(sign / baseline).toFixed(2)}x (target <= 3x)`);
console.log(`verify / baseline: ${(verify / baseline).toFixed(2)}x`);
console.log(`Ed25519 sign   / HMAC sign:   ${(edSign / sign).toFixed(1)}x`);
console.log(`Ed25519 verify / HMAC verify: ${(edVerify / verify).toFixed(1)}x`);
if (sink === 0) console.log("");
