/**
 * Tracing without an OpenTelemetry SDK (this file registers none until its
 * last test): a request with no trace context to pass on makes no span and no
 * context switch (util/trace.ts spansOff), one that carries a context still
 * passes it on (the job keeps it), and an SDK registered later is followed.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { MemoryJobStore } from "../src/index.js";
import { spansOff } from "../src/util/trace.js";
import { pair as makePair, signedEnvelope, until } from "./helpers.js";

const servers: { close(): Promise<void> }[] = [];
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
