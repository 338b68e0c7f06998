/**
 * Tracing without an OpenTelemetry SDK (this file registers none until its
 * last test): a request with no trace context to pass on makes no span and no
 * context switch (util/trace.ts spansOff), one that carries a context still
 * passes it on (the job keeps it), and an SDK registered later is followed.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { z } from "zod";
import { defineTool, demoTools, MemoryJobStore } from "../src/index.js";
import { spansOff } from "../src/util/trace.js";
import { pair as makePair, signedEnvelope, until } from "./helpers.js";

const servers: { close(): Promise<void> }[] = [];

/** A tool that records the trace id active while it runs. */
const traceSpy = (seen: (string | undefined)[]) =>
  defineTool({
    name: "trace_spy",
    description: "records the active trace id",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: async () => {
      seen.push(trace.getSpanContext(context.active())?.traceId);
      return {};
    },
  });
after(() => Promise.all(servers.map((s) => s.close())));

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe("tracing without an SDK", () => {
  it("a span with no parent is off; one with a parent is not", () => {
    assert.equal(spansOff(false), true);
    assert.equal(spansOff(true), false);
  });

  it("a job started with a carried trace context keeps it; one without keeps none", async () => {
    const jobStore = new MemoryJobStore();
    const { server } = makePair({ jobStore });
    servers.push(server);
    const started = async (carrier?: { traceparent: string }) => {
      const result = await server.handle(signedEnvelope({ tool: "start_long_task", args: { seconds: 1 } }), carrier);
      assert.equal(result.response.status, "accepted", JSON.stringify(result.response));
      return String(result.response.result?.job_id);
    };
    const carried = await started({ traceparent: PARENT });
    const plain = await started();
    // Without an SDK the server's span is the carried context itself: the job keeps the caller's trace.
    assert.equal((await jobStore.get(carried))?.trace, PARENT);
    assert.equal((await jobStore.get(plain))?.trace ?? null, null);
    await until(async () => (await jobStore.get(plain))?.state === "done", 10_000, "the plain job to finish");
  });

  it("a context manager without a tracer provider (NodeSDK with traces off): an outer trace stays hidden from tools", async () => {
    const manager = new AsyncLocalStorageContextManager();
    context.setGlobalContextManager(manager.enable());
    try {
      const seen: (string | undefined)[] = [];
      const { server } = makePair({ tools: [...demoTools, traceSpy(seen)] });
      servers.push(server);
      const outer = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: TRACE_ID,
        spanId: "00f067aa0ba902b7",
        traceFlags: 1,
        isRemote: true,
      });
      // Outside any context: nothing active, so no span is made (the tool sees none).
      assert.equal(spansOff(false), true);
      assert.equal((await server.handle(signedEnvelope({ tool: "trace_spy", args: {} }))).response.status, "ok");
      // Inside an outer trace: as before spansOff, the request's own (non-recording) span hides it.
      assert.equal(
        context.with(outer, () => spansOff(false)),
        false,
      );
      const answered = await context.with(outer, () => server.handle(signedEnvelope({ tool: "trace_spy", args: {} })));
      assert.equal(answered.response.status, "ok");
      assert.equal(seen.length, 2);
      assert.notEqual(seen[0], TRACE_ID);
      assert.notEqual(seen[1], TRACE_ID, "the outer trace leaked into the tool");
    } finally {
      context.disable();
    }
  });

  it("an SDK registered later is followed: spans are made from then on", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
    after(async () => {
      await provider.shutdown();
      trace.disable();
    });
    assert.equal(spansOff(false), false);
    const { client, server } = makePair();
    servers.push(server);
    await client.call("batch_sum", { numbers: [1, 2] });
    const names = exporter.getFinishedSpans().map((span) => span.name);
    assert.ok(names.includes("tools/call batch_sum"), `spans: ${names}`);
    assert.equal(new Set(exporter.getFinishedSpans().map((span) => span.spanContext().traceId)).size, 1);
  });
});
