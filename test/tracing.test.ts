/**
 * Tracing (issue 23, SPEC §10) with the in-memory exporter: a CLIENT span per
 * call, a SERVER span per request under it, the job's run joining the trace of
 * the call that started it, polls linking to the job, log lines with trace ids,
 * and a forged or malformed trace header that can't force sampling.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, beforeEach, describe, it } from "node:test";
import { type Context, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { Redis } from "ioredis";
import { RedisJobStore } from "../src/backends/redis/jobs.js";
import { createObservability } from "../src/observe.js";
import { openStores } from "../src/stores.js";
import { CLIENT_SECRET, pair as makePair, signedEnvelope, until } from "./helpers.js";
import { dropSchemas, schemaName, storeUrl } from "./postgres-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const servers: { close(): Promise<void> }[] = [];
after(() => Promise.all(servers.map((s) => s.close())));
const pair = (...args: Parameters<typeof makePair>) => {
  const made = makePair(...args);
  servers.push(made.server);
  return made;
};

const exporter = new InMemorySpanExporter();
// The root sampler's decision, per test; a parent (remote or local) decides for its children.
let sampleRoots = true;
const root: Sampler = {
  shouldSample: () => ({ decision: sampleRoots ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD }),
  toString: () => "test root",
};
const provider = new NodeTracerProvider({
  sampler: new ParentBasedSampler({ root }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
provider.register();
after(() => provider.shutdown());
beforeEach(() => {
  exporter.reset();
  sampleRoots = true;
});

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((s) => s.name === name);
const one = (name: string): ReadableSpan => {
  const found = named(name);
  assert.equal(found.length, 1, `one span named ${name}; have ${spans().map((s) => s.name)}`);
  return found[0] as ReadableSpan;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe("tracing", () => {
  it("a call: CLIENT span → SERVER span (verify, nonce, execute_tool children), one trace, GenAI/MCP attributes", async () => {
    const { client } = pair();
    await client.call("batch_sum", { numbers: [1, 2] });
    const clientSpan = spans().find((s) => s.kind === SpanKind.CLIENT) as ReadableSpan;
    const serverSpans = spans().filter((s) => s.kind === SpanKind.SERVER);
    assert.equal(serverSpans.length, 1);
    const server = serverSpans[0] as ReadableSpan;
    assert.equal(clientSpan.kind, SpanKind.CLIENT);
    assert.equal(server.name, "tools/call batch_sum");
    assert.equal(parentOf(server), clientSpan.spanContext().spanId);
    for (const s of spans()) assert.equal(s.spanContext().traceId, clientSpan.spanContext().traceId);
    for (const name of ["smcp.verify", "smcp.nonce.reserve", "execute_tool batch_sum"]) {
      assert.equal(parentOf(one(name)), server.spanContext().spanId, name);
    }
    for (const s of [clientSpan, server]) {
      assert.equal(s.attributes["mcp.method.name"], "tools/call");
      assert.equal(s.attributes["gen_ai.operation.name"], "execute_tool");
      assert.equal(s.attributes["gen_ai.tool.name"], "batch_sum");
      assert.equal(s.attributes["smcp.client.id"], "client-001");
      assert.equal(s.attributes["smcp.status"], "ok");
      assert.equal(s.attributes["error.type"], undefined);
    }
    assert.equal(one("execute_tool batch_sum").attributes["gen_ai.tool.name"], "batch_sum");
  });

  it("an error answer: error.type is the SPEC §5 code on both sides", async () => {
    const { client } = pair();
    await assert.rejects(client.call("no_such_tool", {}));
    const server = spans().find((s) => s.kind === SpanKind.SERVER) as ReadableSpan;
    const clientSpan = spans().find((s) => s.kind === SpanKind.CLIENT) as ReadableSpan;
    assert.equal(server.attributes["error.type"], "unknown_tool");
    assert.equal(clientSpan.attributes["error.type"], "unknown_tool");
    assert.equal(server.status.code, 2);
    // An unknown name never becomes part of the server's span name.
    assert.equal(server.name, "tools/call");
  });

  it("a verified request joins the carried trace; a forged one with the same sampled header exports nothing", async () => {
    const { server } = pair();
    sampleRoots = false;
    // Forged: signed with the wrong secret, asking to be sampled.
    const forged = await server.handle(signedEnvelope({}, "not the client's secret"), { traceparent: PARENT });
    assert.equal(forged.response.result?.code, "bad_signature");
    assert.equal(spans().length, 0, "a request that fails verification can't force sampling");
    // Stale (verified signature, outside the window) is refused before the parent is believed too.
    await server.handle(signedEnvelope({ ts_ms: Date.now() - 3_600_000 }), { traceparent: PARENT });
    assert.equal(spans().length, 0);
    // Verified: the carried parent decides (sampled), and the span is its child.
    await server.handle(signedEnvelope({}, CLIENT_SECRET), { traceparent: PARENT, tracestate: "vendor=x" });
    const span = spans().find((s) => s.kind === SpanKind.SERVER) as ReadableSpan;
    assert.equal(span.spanContext().traceId, TRACE_ID);
    assert.equal(parentOf(span), "00f067aa0ba902b7");
    assert.equal(span.spanContext().traceState?.get("vendor"), "x");
  });

  it("a malformed header is ignored: the request is a root, sampled only by the root sampler", async () => {
    const { server } = pair();
    for (const traceparent of ["garbage", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`, `${PARENT}-extra`, PARENT.toUpperCase()]) {
      sampleRoots = false;
      await server.handle(signedEnvelope(), { traceparent });
      assert.equal(spans().length, 0, traceparent);
      sampleRoots = true;
      await server.handle(signedEnvelope(), { traceparent });
      const span = spans().find((s) => s.kind === SpanKind.SERVER) as ReadableSpan;
      assert.notEqual(span.spanContext().traceId, TRACE_ID);
      assert.equal(span.parentSpanContext, undefined);
      exporter.reset();
    }
  });

  it("a job: its run joins the trace of the call that started it; polls link to the job", async () => {
    const { client } = pair();
    const tracer = trace.getTracer("test");
    const agent = tracer.startSpan("agent");
    const ctx: Context = trace.setSpan(ROOT_CONTEXT, agent);
    const { context } = await import("@opentelemetry/api");
    const result = await context.with(ctx, () => client.callAndWait("start_long_task", { seconds: 1 }, { timeoutMs: 20_000 }));
    agent.end();
    assert.ok(result);
    await until(() => named("execute_tool start_long_task").length === 1, 5_000, "the run's span");
    const traceId = agent.spanContext().traceId;
    const start = spans().find((s) => s.kind === SpanKind.SERVER && s.attributes["smcp.status"] === "accepted") as ReadableSpan;
    const jobId = start.attributes["smcp.job.id"];
    assert.equal(typeof jobId, "string");
    const run = one("execute_tool start_long_task");
    assert.equal(run.spanContext().traceId, traceId);
    assert.equal(parentOf(run), start.spanContext().spanId);
    assert.equal(run.attributes["smcp.job.id"], jobId);
    const polls = spans().filter((s) => s.kind === SpanKind.SERVER && s.name === "tools/call poll_job");
    assert.ok(polls.length >= 1);
    for (const poll of polls) {
      assert.equal(poll.attributes["smcp.job.id"], jobId);
      assert.deepEqual(
        poll.links.map((l) => l.context.spanId),
        [start.spanContext().spanId],
      );
    }
  });

  it("log lines carry trace_id and span_id while a span is active", async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split("\n").filter(Boolean));
        done();
      },
    });
    const observability = createObservability({ destination: destination as never });
    const { client } = pair({ observer: observability.observer });
    await client.call("batch_sum", { numbers: [1] });
    await observability.close();
    await until(() => lines.some((l) => l.includes('"msg":"request"')), 5_000, "the request line");
    const line = JSON.parse(lines.find((l) => l.includes('"msg":"request"')) as string);
    const server = spans().find((s) => s.kind === SpanKind.SERVER) as ReadableSpan;
    assert.equal(line.trace_id, server.spanContext().traceId);
    assert.equal(line.span_id, server.spanContext().spanId);
  });
});

describe("the job keeps the trace context in every store", () => {
  const dir = mkdtempSync(join(tmpdir(), "smcp-trace-"));
  const schema = schemaName();
  const prefix = `smcp-trace-${randomUUID().slice(0, 8)}:`;
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropSchemas([schema]);
    await deleteKeys(prefix);
  });
  const urls: Record<string, string> = {
    memory: "memory",
    sqlite: `sqlite:${join(dir, "jobs.db")}`,
    redis: `${REDIS_URL}?prefix=${prefix}`,
    postgres: storeUrl(schema, 2),
  };
  for (const [name, url] of Object.entries(urls)) {
    it(name, async () => {
      // Redis: the job store alone (the URL's stores would open BullMQ connections this test never closes).
      const stores =
        name === "redis"
          ? {
              jobStore: new RedisJobStore(new Redis(REDIS_URL), { prefix, closeConnection: true }),
              nonceStore: { close: async () => {} },
            }
          : await openStores(url);
      try {
        const id = randomUUID();
        const { job } = await stores.jobStore.create({ id, clientId: "c", tool: "t", args: {}, trace: PARENT });
        assert.equal(job.trace, PARENT);
        assert.equal((await stores.jobStore.get(id))?.trace, PARENT);
        const plain = randomUUID();
        await stores.jobStore.create({ id: plain, clientId: "c", tool: "t", args: {} });
        assert.equal((await stores.jobStore.get(plain))?.trace, null);
      } finally {
        await stores.jobStore.close();
        await stores.nonceStore.close();
      }
    });
  }
});
