/**
 * One job's trace across processes (issue 23): this process (the agent, a CLIENT span) →
 * replica A (`relay` accepted) → a worker process (runs it, BullMQ across Redis) → replica B's
 * MCP gateway (`echo_meta`) → an MCP upstream on stdio (gets the context in `_meta`); the agent
 * long-polls replica B. Every process exports with the official OTLP exporter (http/json) to a
 * receiver on loopback here, which rebuilds the trace.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { clientAt, SERVE_KEYS, until } from "./helpers.js";
import { type Child, startCli } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

/** A span as the receiver rebuilt it from OTLP/JSON. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
const value = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue));
const attrs = (list: { key: string; value: OtlpValue }[] = []) => Object.fromEntries(list.map((a) => [a.key, value(a.value)]));

/** A loopback OTLP/HTTP receiver: POST /v1/traces as http/json, kept in `spans`. */
export async function startReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (
        req.method === "POST" &&
        req.url === "/v1/traces" &&
        String(req.headers["content-type"]).startsWith("application/json")
      ) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        for (const rs of body.resourceSpans ?? []) {
          const service = String(attrs(rs.resource?.attributes)["service.name"]);
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                service,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? "",
                name: s.name,
                kind: s.kind,
                attributes: attrs(s.attributes),
                links: (s.links ?? []).map((l: { traceId: string; spanId: string }) => ({
                  traceId: l.traceId,
                  spanId: l.spanId,
                })),
              });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

const TOOLS = fileURLToPath(new URL("./fixtures/trace-tools.mjs", import.meta.url));
const UPSTREAM = fileURLToPath(new URL("./fixtures/trace-upstream.mjs", import.meta.url));
const children: Child[] = [];
const prefix = `smcp-trace-e2e-${randomUUID().slice(0, 8)}:`;

describe("one job's trace across processes (OTLP http/json to a loopback receiver)", () => {
  after(async () => {
    for (const child of children) await child.stop();
    await deleteKeys(prefix);
  });

  it("rebuilds one trace: agent → replica A → worker → replica B's gateway → MCP upstream; polls link to the job", async () => {
    const receiver = await startReceiver();
    after(() => receiver.server.close());
    const store = `${REDIS_URL}?prefix=${prefix}`;
    const otel = (service: string) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: service,
      OTEL_BSP_SCHEDULE_DELAY: "50",
      OTEL_METRICS_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
    });
    const serve = ["serve", "--port", "0", "--store", store, "--no-worker", "--tools", TOOLS, ...SERVE_KEYS];
    const a = await startCli(serve, otel("replica-a"));
    children.push(a);
    const b = await startCli([...serve, "--mcp-upstream", `${process.execPath} ${UPSTREAM}`], otel("replica-b"));
    children.push(b);
    const urlB = b.line.replace(/^listening on /, "");
    const worker = await startCli(["worker", "--store", store, "--tools", TOOLS], {
      ...otel("worker"),
      TRACE_GATEWAY_URL: urlB,
      SMCP_CONFIG: "/nonexistent/keyring.json",
    });
    children.push(worker);

    const provider = new NodeTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${receiver.url}/v1/traces` }))],
    });
    provider.register();
    after(() => provider.shutdown());
    const agent = trace.getTracer("agent").startSpan("agent");
    const active = trace.setSpan(context.active(), agent);
    const start = clientAt(a.line);
    const poll = clientAt(urlB);
    const { jobId, said } = await context.with(active, async () => {
      const { job_id } = (await start.call("relay", {})) as { job_id: string };
      const done = await poll.waitForJob(job_id, { timeoutMs: 30_000 });
      assert.equal(done.status, "done", JSON.stringify(done));
      return { jobId: job_id, said: String(done.result?.said) };
    });
    agent.end();
    await provider.forceFlush();
    const traceId = agent.spanContext().traceId;
    const find = (service: string, name: string, kind?: number) =>
      receiver.spans.find((s) => s.service === service && s.name === name && (kind === undefined || s.kind === kind));
    // OTLP kinds: 2 SERVER, 3 CLIENT, 1 INTERNAL.
    // Each process exports in its own batches: wait for the last span of each (the run ends after its answer is stored).
    await until(
      () =>
        find("replica-b", "tools/call echo_meta", 3) !== undefined &&
        find("worker", "execute_tool relay") !== undefined &&
        find("replica-a", "tools/call relay", 2) !== undefined &&
        find("replica-b", "tools/call poll_job", 2) !== undefined,
      20_000,
      "every process's spans",
    );
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parent = (s: ReceivedSpan | undefined) => (s ? byId.get(s.parentSpanId) : undefined);

    const startServer = spans.find((s) => s.service === "replica-a" && s.name === "tools/call relay" && s.kind === 2);
    assert.ok(startServer, "replica A's SERVER span is in the agent's trace");
    assert.equal(parent(startServer)?.kind, 3);
    assert.equal(parent(parent(startServer))?.spanId, agent.spanContext().spanId);
    assert.equal(startServer.attributes["smcp.job.id"], jobId);
    assert.equal(startServer.attributes["gen_ai.tool.name"], "relay");
    assert.equal(startServer.attributes["mcp.method.name"], "tools/call");

    const run = spans.find((s) => s.service === "worker" && s.name === "execute_tool relay");
    assert.ok(run, "the worker's run joined the trace");
    assert.equal(run.parentSpanId, startServer.spanId);
    assert.equal(run.attributes["smcp.job.id"], jobId);

    const gatewayCall = spans.find((s) => s.service === "worker" && s.name === "tools/call echo_meta" && s.kind === 3);
    assert.equal(parent(gatewayCall)?.spanId, run.spanId);
    const gatewayServer = spans.find((s) => s.service === "replica-b" && s.name === "tools/call echo_meta" && s.kind === 2);
    assert.equal(gatewayServer?.parentSpanId, gatewayCall?.spanId);
    const execute = spans.find((s) => s.service === "replica-b" && s.name === "execute_tool echo_meta");
    assert.equal(execute?.parentSpanId, gatewayServer?.spanId);
    const upstream = spans.find((s) => s.service === "replica-b" && s.name === "tools/call echo_meta" && s.kind === 3);
    assert.equal(upstream?.parentSpanId, execute?.spanId);
    // The upstream got the gateway's CLIENT span as its parent, in `_meta.traceparent`.
    assert.ok(said.includes(`00-${traceId}-${upstream?.spanId}-01`), said);

    const polls = spans.filter((s) => s.service === "replica-b" && s.name === "tools/call poll_job" && s.kind === 2);
    assert.ok(polls.length >= 1, "the long polls are in the trace");
    for (const p of polls) {
      assert.equal(p.attributes["smcp.job.id"], jobId);
      assert.deepEqual(p.links, [{ traceId, spanId: startServer.spanId }]);
    }
    assert.ok(spans.every((s) => s.traceId === traceId));
  });
});
