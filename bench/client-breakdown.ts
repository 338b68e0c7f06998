// Where a client call's time goes over HTTP (issue 22, item 6), beside bench/client.ts's totals. One
// `smcp serve` (memory, no limiter, warn logs) on CPU 0, this process on CPU 1, concurrency 1.
//
// 1. Phases of `createClient().call` over `undiciTransport`: building and signing the envelope, the
//    transport's round trip, verifying the answer (timed around the client's own methods), and the rest.
// 2. Ways, interleaved in blocks: the raw `undici.request` (pre-signed body), the transport's `send`
//    (same body), `call`, and the raw request after a busy pause of 20/40/80 µs before each one. The
//    pauses show what a client's own work between round trips costs the round trip itself on this
//    machine (the server's core goes idle in the gap and must be woken), apart from the work.
//
//   node --import tsx bench/client-breakdown.ts [--rounds 12] [--calls 500] [--dist]
import { parseArgs } from "node:util";
import { request as undiciRequest } from "undici";
import { BATCH_NUMBERS, BENCH, benchEnvelope } from "./fixtures.js";
import { pinSelf } from "./peer.js";
import { quietFlags, startSmcp } from "./smcp.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "12" },
    calls: { type: "string", default: "500" },
    dist: { type: "boolean", default: false },
  },
});
const ROUNDS = Number(values.rounds);
const CALLS = Number(values.calls);
const smcp = (await import(values.dist ? "../dist/index.js" : "../src/index.js")) as typeof import("../src/index.js");
const http = (await import(values.dist ? "../dist/http.js" : "../src/http.js")) as typeof import("../src/http.js");

pinSelf(1);
const server = await startSmcp({ store: "memory", extra: quietFlags() });
const url = `${server.url}/mcp`;
const headers = { "content-type": "application/json" };
const transport = http.undiciTransport(url);
let inSend = 0;
const timed: import("../src/index.js").Transport = {
  async send(body, options) {
    const start = performance.now();
    try {
      return await transport.send(body, options);
    } finally {
      inSend += performance.now() - start;
    }
  },
};
const client = smcp.createClient({
  clientId: "bench",
  clientSecret: BENCH.clientSecret,
  serverId: "bench",
  serverKey: BENCH.serverSecret,
  transport: timed,
});
// The client's own methods, timed on this instance only.
let inBuild = 0;
let inVerify = 0;
const build = client.buildEnvelope.bind(client);
const verify = client.verifyResponse.bind(client);
client.buildEnvelope = (tool, args) => {
  const start = performance.now();
  const built = build(tool, args);
  inBuild += performance.now() - start;
  return built;
};
client.verifyResponse = (body, requestId) => {
  const start = performance.now();
  const response = verify(body, requestId);
  inVerify += performance.now() - start;
  return response;
};

const spin = (us: number) => {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
};
const raw = async (body: string) => {
  const response = await undiciRequest(url, { method: "POST", headers, body });
  await response.body.arrayBuffer();
};
/** Each way: its work for one call, and the part of it timed as the request (all of it but a pause). */
const WAYS: Record<string, (body: string) => Promise<number>> = {
  "raw undici.request": async (body) => {
    const start = performance.now();
    await raw(body);
    return performance.now() - start;
  },
  "undiciTransport send": async (body) => {
    const start = performance.now();
    await transport.send(body);
    return performance.now() - start;
  },
  "createClient().call": async () => {
    const start = performance.now();
    await client.call("batch_sum", { numbers: BATCH_NUMBERS });
    return performance.now() - start;
  },
};
for (const us of [20, 40, 80]) {
  WAYS[`raw undici.request after a ${us} µs pause`] = async (body) => {
    spin(us);
    const start = performance.now();
    await raw(body);
    return performance.now() - start;
  };
}

const totals = new Map<string, { ms: number; request: number; cpu: number; calls: number }>();
let phases = { build: 0, send: 0, verify: 0, total: 0, calls: 0 };
for (let round = 0; round < ROUNDS + 2; round++) {
  for (const [name, way] of Object.entries(WAYS)) {
    const bodies = Array.from({ length: CALLS }, () => benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }));
    inBuild = inSend = inVerify = 0;
    let request = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (const body of bodies) request += await way(body);
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    if (round < 2) continue; // warm-up
    const entry = totals.get(name) ?? { ms: 0, request: 0, cpu: 0, calls: 0 };
    entry.ms += ms;
    entry.request += request;
    entry.cpu += (used.user + used.system) / 1000;
    entry.calls += CALLS;
    totals.set(name, entry);
    if (name === "createClient().call") {
      phases = {
        build: phases.build + inBuild,
        send: phases.send + inSend,
        verify: phases.verify + inVerify,
        total: phases.total + request,
        calls: phases.calls + CALLS,
      };
    }
  }
}
await server.stop();

const us = (ms: number, calls: number) => ((ms * 1000) / calls).toFixed(1);
console.log(
  `\nclient breakdown: ${ROUNDS} rounds x ${CALLS} calls per way, interleaved, concurrency 1; smcp serve (memory) on CPU 0, this process on CPU 1${values.dist ? "; client from dist/" : ""}\n`,
);
const rest = phases.total - phases.build - phases.send - phases.verify;
console.log("| a call's phase | µs per call (wall) |\n|---|---:|");
console.log(`| build and sign the envelope | ${us(phases.build, phases.calls)} |`);
console.log(`| the transport's round trip | ${us(phases.send, phases.calls)} |`);
console.log(`| verify the answer | ${us(phases.verify, phases.calls)} |`);
console.log(`| the rest (spans, metrics, promises) | ${us(rest, phases.calls)} |`);
console.log(`| the call | ${us(phases.total, phases.calls)} |\n`);
const base = totals.get("raw undici.request") as { ms: number; request: number; cpu: number; calls: number };
console.log("| way | µs per call | of which the request | vs raw | client CPU µs per call |\n|---|---:|---:|---:|---:|");
for (const [name, t] of totals) {
  console.log(
    `| ${name} | ${us(t.ms, t.calls)} | ${us(t.request, t.calls)} | ${(t.request / base.request).toFixed(2)}x | ${us(t.cpu, t.calls)} |`,
  );
}
process.exit(0);
