// Prints the trace of one job as a tree (docs/tracing.md). It starts an OTLP/HTTP receiver on
// loopback (http/json), `smcp serve` exporting to it (OTEL_* variables, the Node SDK loaded
// lazily), and a client in this process that exports too; it runs one `start_long_task` job,
// long-polls it, and prints every span of that trace with its process, kind and attributes.
//
//   npm run build && node --import tsx examples/trace-tree.ts
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { createClient, httpTransport } from "../src/index.js";

interface Span {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  start: bigint;
  attributes: Record<string, unknown>;
  links: string[];
}
type Value = { stringValue?: string; intValue?: string | number; boolValue?: boolean };
const attrs = (list: { key: string; value: Value }[] = []) =>
  Object.fromEntries(list.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue]));

const spans: Span[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    for (const rs of body.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          spans.push({
            service: String(attrs(rs.resource?.attributes)["service.name"]),
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            start: BigInt(s.startTimeUnixNano),
            attributes: attrs(s.attributes),
            links: (s.links ?? []).map((l: { spanId: string }) => l.spanId),
          });
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});
receiver.listen(0, "127.0.0.1");
await once(receiver, "listening");
const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const KEYS = [
  "--server-id",
  "demo-server",
  "--server-secret",
  "demo-server-secret-0001",
  "--client",
  "agent=demo-client-secret-0001",
];
const server = spawn(
  process.execPath,
  ["dist/cli/main.js", "serve", "--port", "0", "--store", "memory", "--log-level", "warn", ...KEYS],
  {
    env: {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "smcp-serve",
      OTEL_BSP_SCHEDULE_DELAY: "50",
      OTEL_METRICS_EXPORTER: "none",
    },
    stdio: ["ignore", "pipe", "inherit"],
  },
);
const [line] = (await once(createInterface({ input: server.stdout }), "line")) as [string];
const url = line.replace(/^listening on /, "");

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ "service.name": "agent" }),
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))],
});
provider.register();
const client = createClient({
  clientId: "agent",
  clientSecret: "demo-client-secret-0001",
  serverId: "demo-server",
  serverSecret: "demo-server-secret-0001",
  transport: httpTransport(url),
});
const root = trace.getTracer("agent").startSpan("agent: one job");
await context.with(trace.setSpan(context.active(), root), () => client.callAndWait("start_long_task", { seconds: 1 }));
root.end();
await provider.forceFlush();
// The server's batch goes out within 50 ms; stop it (SIGTERM flushes what is left) and read the tree.
server.kill("SIGTERM");
await once(server, "exit");

const traceId = root.spanContext().traceId;
const mine = spans.filter((s) => s.traceId === traceId).sort((a, b) => (a.start < b.start ? -1 : 1));
const KIND = ["unspecified", "internal", "SERVER", "CLIENT", "producer", "consumer"];
const shown = ["gen_ai.tool.name", "error.type", "smcp.status", "smcp.job.id"];
const print = (span: Span, depth: number) => {
  const facts = shown.filter((k) => span.attributes[k] !== undefined).map((k) => `${k}=${span.attributes[k]}`);
  const links = span.links.length ? ` links→${span.links.join(",")}` : "";
  console.log(
    `${"  ".repeat(depth)}${span.name} [${KIND[span.kind]}, ${span.service}] ${span.spanId} ${facts.join(" ")}${links}`,
  );
  for (const child of mine.filter((s) => s.parentSpanId === span.spanId)) print(child, depth + 1);
};
console.log(`trace ${traceId}: ${mine.length} spans`);
for (const top of mine.filter((s) => !mine.some((p) => p.spanId === s.parentSpanId))) print(top, 0);
await provider.shutdown();
receiver.close();
