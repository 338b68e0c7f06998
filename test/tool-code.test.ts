/**
 * Tool code can't take the server down: a handler that ignores its abort
 * signal is counted and capped while it outlives its timeout; a stray
 * rejection or exception from tool code is logged, counted and survived.
 * (Jobs keeping their slot: test/conformance/serverjobs.ts, on every store.)
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { defineTool, type SmcpServer } from "../src/index.js";
import { createObservability } from "../src/observe.js";
import { clientAt, pair, SERVE_KEYS, until } from "./helpers.js";
import { Gates } from "./longpoll-helpers.js";
import { type Child, startCli } from "./process-helpers.js";

const servers: SmcpServer[] = [];
const children: Child[] = [];
after(async () => {
  for (const server of servers) await server.close();
  for (const child of children) await child.stop("SIGKILL");
});

describe("a sync handler that ignores its abort signal", () => {
  it("is answered at its timeout, counted as overdue (in /metrics) until it ends, and capped per tool", async () => {
    const gates = new Gates();
    let running = 0;
    const stubborn = defineTool({
      name: "stubborn",
      description: "ignores its abort signal",
      timeoutMs: 10,
      input: z.strictObject({ gate: z.string() }),
      output: z.strictObject({}),
      handler: async ({ gate }) => {
        running++;
        await gates.wait(gate);
        running--;
        return {};
      },
    });
    const polite = defineTool({
      name: "polite",
      description: "answers at once",
      input: z.strictObject({}),
      output: z.strictObject({ ok: z.boolean() }),
      handler: () => ({ ok: true }),
    });
    const observe = createObservability({ metrics: true, logLevel: "silent" });
    const { server, client } = pair({ tools: [stubborn, polite], maxOverdueRuns: 2, observer: observe.observer });
    servers.push(server);
    for (const gate of ["a", "b"]) {
      await assert.rejects(client.call("stubborn", { gate }), { code: "tool_failed", message: "the tool timed out after 10 ms" });
    }
    assert.equal(running, 2, "both handlers still run");
    assert.equal(server.runs.overdueByTool().get("stubborn"), 2);
    const metrics = await observe.metrics?.render();
    assert.match(metrics ?? "", /smcp_tool_runs_overdue\{tool="stubborn"\} 2/);
    assert.match(metrics ?? "", /smcp_tool_runs_overdue_total\{tool="stubborn"\} 2/);
    // At the cap: this tool's new runs are refused (nothing started), other tools are untouched.
    await assert.rejects(client.call("stubborn", { gate: "c" }), { code: "unavailable" });
    assert.equal(running, 2, "the refused run never started");
    assert.deepEqual(await client.call("polite", {}), { ok: true });
    gates.open("a");
    gates.open("b");
    await until(() => server.runs.overdueByTool().size === 0, 5000, "the overdue runs to end");
    assert.match((await observe.metrics?.render()) ?? "", /smcp_tool_runs_overdue\{tool="stubborn"\} 0/);
    // Below the cap again: the tool runs (its gate already open, it answers in time).
    gates.open("d");
    assert.deepEqual(await client.call("stubborn", { gate: "d" }), {});
  });
});

describe("stray errors from tool code (smcp serve)", () => {
  it("an unhandled rejection and an exception thrown from a callback are logged with the running tools and counted; the server goes on", async () => {
    const tools = fileURLToPath(new URL("./fixtures/stray-tools.mjs", import.meta.url));
    const child = await startCli([
      "serve",
      "--port",
      "0",
      "--store",
      "memory",
      "--metrics",
      "--tools",
      tools,
      "--no-demo-tools",
      ...SERVE_KEYS,
    ]);
    children.push(child);
    const origin = child.line.replace(/^listening on /, "");
    const client = clientAt(origin);
    const strays = async () => {
      const text = await (await fetch(`${origin}/metrics`)).text();
      return text.split("\n").filter((line) => line.startsWith("smcp_stray_errors_total{"));
    };
    assert.deepEqual(await client.call("leaky", {}), { ok: true });
    assert.deepEqual(await client.call("thrower", {}), { ok: true });
    await until(async () => (await strays()).length === 2, 10_000, "both strays counted");
    assert.deepEqual((await strays()).sort(), [
      'smcp_stray_errors_total{kind="uncaught_exception"} 1',
      'smcp_stray_errors_total{kind="unhandled_rejection"} 1',
    ]);
    // Still serving, and said so in the log.
    assert.deepEqual(await client.call("leaky", {}), { ok: true });
    assert.equal(child.process.exitCode, null);
    // The log is written asynchronously (it may trail the counter): wait for the lines, then check them.
    await until(
      () => /stray rejection from leaky/.test(child.stderr()) && /stray exception from thrower/.test(child.stderr()),
      10_000,
      "both strays logged",
    );
    assert.match(child.stderr(), /an error escaped tool code/);
    assert.match(child.stderr(), /stray rejection from leaky/);
    assert.match(child.stderr(), /stray exception from thrower/);
    assert.match(child.stderr(), /stray-tools\.mjs/, "where the stray code lives");
  });
});
