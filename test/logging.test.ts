/**
 * Logs appear when things happen (not when a 4 KB buffer fills), and a log
 * reader that stalls can't grow the server's memory without bound: past
 * `--log-buffer-bytes` lines are dropped, counted in /metrics, and reported
 * once the reader is back.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import fc from "fast-check";
import pino from "pino";
import { createObservability, logRequest, requestLogLine } from "../src/server/observe.js";
import type { RequestEvent } from "../src/server/observer.js";
import { logIds } from "../src/util/trace.js";
import { clientAt, SERVE_KEYS, until } from "./helpers.js";
import { BIN, type Child, startCli } from "./process-helpers.js";

const children: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of children) await stop();
});

describe("logs (smcp serve)", () => {
  it("a request's line is written while the server runs, at the default level", async () => {
    const child: Child = await startCli(["serve", "--port", "0", "--store", "memory", ...SERVE_KEYS]);
    children.push(() => child.stop("SIGKILL"));
    const client = clientAt(child.line.replace(/^listening on /, ""));
    await client.call("batch_sum", { numbers: [1, 2] });
    await until(() => child.stderr().includes('"tool":"batch_sum"'), 10_000, "the request's log line");
    const line =
      child
        .stderr()
        .split("\n")
        .find((l) => l.includes('"tool":"batch_sum"')) ?? "";
    assert.equal(JSON.parse(line).msg, "request");
  });

  it("a reader that stalls: lines past --log-buffer-bytes are dropped and counted, and reported once it reads again", async () => {
    const child = spawn(
      process.execPath,
      [BIN, "serve", "--port", "0", "--store", "memory", "--metrics", "--log-buffer-bytes", "65536", ...SERVE_KEYS],
      {
        env: { PATH: process.env.PATH },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.push(async () => {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    });
    // Nobody reads stderr yet: the pipe fills (64 KiB on Linux), then the server's buffer does.
    child.stderr.pause();
    const [ready] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const origin = ready.replace(/^listening on /, "");
    const client = clientAt(origin);
    const dropped = async () => {
      const text = await (await fetch(`${origin}/metrics`)).text();
      return Number(/^smcp_log_lines_dropped_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
    };
    // Each request logs ~200 bytes; 64 KiB of pipe and 64 KiB of buffer hold about 650 lines.
    for (let sent = 0; (await dropped()) === 0; ) {
      assert.ok(sent < 20_000, "lines were never dropped");
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.call("batch_sum", { numbers: [i] })));
      sent += 200;
    }
    const lost = await dropped();
    assert.ok(lost > 0);
    // The server kept answering while its log was stalled.
    assert.deepEqual(await client.call("batch_sum", { numbers: [2, 3] }), { count: 2, total: 5 });
    let text = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      text += chunk;
    });
    child.stderr.resume();
    await until(() => text.includes("the log reader fell behind"), 10_000, "the dropped-lines report");
    const report = JSON.parse(text.split("\n").find((l) => l.includes("the log reader fell behind")) ?? "{}");
    const total = await dropped();
    assert.ok(report.dropped_lines >= lost && report.dropped_lines <= total, `${report.dropped_lines}: ${lost}..${total}`);
  });
});

describe("the request line (written by hand, byte for byte pino's)", () => {
  /** What pino writes for the event with smcp's logger options, at a fixed time. */
  function pinoLine(event: RequestEvent, time: number): string {
    let written = "";
    const logger = pino(
      { level: "info", base: null, mixin: () => logIds() ?? {}, timestamp: () => `,"time":${time}` },
      {
        write: (line: string) => {
          written += line;
        },
      },
    );
    logRequest(logger, event);
    return written;
  }

  // Any well-formed text (controls, quotes, backslashes, U+2028, astral), short and past pino's 100-unit
  // threshold, where it switches to JSON.stringify. A lone surrogate (which the parser refuses in any request_id)
  // is the one difference, below.
  const text = fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 60 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 130 }),
    fc.constantFrom("", "bench", "batch_sum", '"\\\n\u2028\u{1F600}', "x".repeat(300)),
  );
  const BASE_EVENT: RequestEvent = {
    requestId: "r",
    clientId: "c",
    tool: "batch_sum",
    code: undefined,
    status: "ok",
    httpStatus: 200,
    durationMs: 1.5,
  };
  const event: fc.Arbitrary<RequestEvent> = fc.record({
    requestId: text,
    clientId: fc.option(text, { nil: undefined }),
    tool: fc.option(text, { nil: undefined }),
    code: fc.option(fc.constantFrom(...(["bad_signature", "replay", "rate_limited", "internal"] as const)), { nil: undefined }),
    status: fc.constantFrom(...(["ok", "error", "accepted"] as const)),
    httpStatus: fc.oneof(fc.constantFrom(200, 202, 400, 401, 429, 503), fc.double()),
    durationMs: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double()),
  });

  it("is the line pino writes, for any event, with and without an active trace", () => {
    fc.assert(
      fc.property(event, fc.integer({ min: 0, max: 2 ** 45 }), (e, time) => {
        assert.equal(requestLogLine(e, time), pinoLine(e, time));
      }),
      { numRuns: 500 },
    );
    // pino on Node < 25 writes a lone surrogate as it is (U+FFFD once encoded); the hand-built line escapes it, as
    // JSON.stringify (and pino on Node 25) does, so the line stays valid JSON that keeps what was there.
    const lone = requestLogLine({ ...BASE_EVENT, requestId: "a\ud800b" }, 1);
    assert.match(lone, /"request_id":"a\\ud800b"/);
    assert.equal(JSON.parse(lone).request_id, "a\ud800b");
    const manager = new AsyncLocalStorageContextManager();
    context.setGlobalContextManager(manager.enable());
    try {
      const active = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        traceFlags: 1,
        isRemote: true,
      });
      fc.assert(
        fc.property(event, fc.integer({ min: 0, max: 2 ** 45 }), (e, time) =>
          context.with(active, () => {
            const line = requestLogLine(e, time);
            assert.match(line, /"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"/);
            assert.equal(line, pinoLine(e, time));
          }),
        ),
        { numRuns: 100 },
      );
    } finally {
      context.disable();
    }
  });

  it("a destination given in code gets pino's own writes (pino.multistream routes request lines by level)", () => {
    // Regression (review, round 3 session 7): the hand-built line written straight to a multistream bypassed the
    // level pino sets before each write, so request lines were dropped, or sent to an error-only stream.
    const infoLines: string[] = [];
    const errorLines: string[] = [];
    const destination = pino.multistream([
      { level: "info", stream: { write: (line: string) => void infoLines.push(line) } },
      { level: "error", stream: { write: (line: string) => void errorLines.push(line) } },
    ]);
    const observability = createObservability({ destination });
    observability.observer.request?.({ ...BASE_EVENT, requestId: "first" });
    observability.logger.error("an error line");
    observability.observer.request?.({ ...BASE_EVENT, requestId: "second" });
    assert.deepEqual(
      infoLines.filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l).request_id),
      ["first", "second"],
    );
    assert.equal(errorLines.filter((l) => l.includes('"msg":"request"')).length, 0, "no request line in the error stream");
  });
});
