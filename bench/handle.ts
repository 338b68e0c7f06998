// In-process cost of SmcpServer.handle (no HTTP): verify, limits, replay check, dispatch, sign.
// Pre-signed bodies (signing is not measured); CPU time per request (process.cpuUsage), so
// another process on the machine disturbs it less than wall time would.
//
//   npm run build && node bench/handle.js ...   (or: node --import tsx bench/handle.ts [--requests 100000] [--limits on|off] [--dist])
// --scopes (SPEC §9): none (every tool, the default scopes), glob (patterns the tool matches only
// through a `*`), registry (the same client from a compiled registry: key ids, not_after, limits).
// --dist measures the built dist/ (no tsx in the way, as `smcp serve` runs). --concurrency N keeps N requests in
// flight at once (waves of N), as a loaded server holds them.
import { parseArgs } from "node:util";
import { BATCH_NUMBERS, benchEnvelope } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "100000" },
    chunk: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "1" },
    limits: { type: "string", default: "on" },
    // on: prom-client metrics and a pino logger at warn, as `smcp serve --metrics --log-level warn` wires them.
    metrics: { type: "string", default: "off" },
    // on: a pino logger at info (a line per request) to stderr, as `smcp serve` logs by default (run with 2>/dev/null).
    logs: { type: "string", default: "off" },
    // Bodies as bytes (as the HTTP adapter hands them over) rather than strings.
    bytes: { type: "boolean", default: false },
    dist: { type: "boolean", default: false },
    scopes: { type: "string", default: "none" },
  },
});
const smcp = (await import(values.dist ? "../dist/index.js" : "../src/index.js")) as typeof import("../src/index.js");
const { BENCH } = await import("./fixtures.js");
const observe = values.metrics === "on" || values.logs === "on" ? await observability() : undefined;
async function observability() {
  const { createObservability } = (await import(
    values.dist ? "../dist/observe.js" : "../src/observe.js"
  )) as typeof import("../src/observe.js");
  return createObservability({ metrics: values.metrics === "on", logLevel: values.logs === "on" ? "info" : "warn" });
}
const SCOPES = ["tools:weather.*", "tools:echo", "tools:batch_*"];
const registry =
  values.scopes === "registry"
    ? ((await import(
        values.dist ? "../dist/auth/registry.js" : "../src/auth/registry.js"
      )) as typeof import("../src/auth/registry.js"))
    : undefined;
const server = smcp.createServer({
  ...(observe ? { observer: observe.observer } : {}),
  keyring: { serverId: "bench", serverSecrets: BENCH.serverSecret, clients: { bench: BENCH.clientSecret } },
  ...(values.scopes === "glob" ? { scopes: { bench: SCOPES } } : {}),
  ...(registry
    ? {
        clients: registry.compileRegistry(
          {
            clients: {
              bench: {
                keys: [{ id: "k1", secret: BENCH.clientSecret, not_after: new Date(Date.now() + 86_400_000).toISOString() }],
                scopes: SCOPES,
              },
            },
          },
          "bench",
        ),
      }
    : {}),
  tools: smcp.demoTools,
  // on: the limiter counts every request (at a rate it never reaches); off: no limiter at all.
  limits: values.limits === "off" ? { rate: 0 } : { rate: 1e9, burst: 1e9 },
});
const N = Number(values.requests);
const CHUNK = Number(values.chunk);
const CONCURRENCY = Math.max(1, Number(values.concurrency));
const tsMs = Date.now() + 60_000;
const bodies = Array.from({ length: N }, () => {
  const text = benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }, tsMs);
  return values.bytes ? Buffer.from(text) : text;
});
const perRequest: number[] = [];
for (let off = 0; off + CHUNK <= N; off += CHUNK) {
  const before = process.cpuUsage();
  // --concurrency N: N requests in flight at once (as a loaded server has them), each wave awaited whole.
  for (let i = off; i < off + CHUNK; i += CONCURRENCY) {
    const wave: Promise<Awaited<ReturnType<typeof server.handle>>>[] = [];
    for (let k = i; k < Math.min(i + CONCURRENCY, off + CHUNK); k++) wave.push(server.handle(bodies[k] as string | Buffer));
    for (const answer of await Promise.all(wave)) if (!answer.response.ok) throw new Error(answer.body);
  }
  const used = process.cpuUsage(before);
  perRequest.push((used.user + used.system) / CHUNK);
}
await server.close();
await observe?.close();
// The first chunk warms the JIT up; the rest are reported.
const warm = perRequest.slice(1).sort((a, b) => a - b);
const median = warm[Math.floor(warm.length / 2)] as number;
console.log(
  `handle(): median ${median.toFixed(1)} us CPU/request, best ${(warm[0] as number).toFixed(1)} (${warm.length} chunks of ${CHUNK}; limits ${values.limits}; metrics ${values.metrics}; logs ${values.logs}; scopes ${values.scopes}; concurrency ${CONCURRENCY}${values.dist ? ", dist" : ""})`,
);
