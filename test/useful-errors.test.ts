/**
 * Errors that tell an authenticated caller what to fix (SPEC §5 as amended):
 * bad_args issues with readable messages, and a tool's own failure message
 * (a `ToolError` always; any other error unless the server hides them).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { z } from "zod";
import { runCli } from "../src/cli/run.js";
import { serveHttp } from "../src/http.js";
import { defineTool, demoTools, SmcpError, type SmcpServer, ToolError } from "../src/index.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { pair } from "./helpers.js";

const servers: SmcpServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

const report = defineTool({
  name: "report",
  description: "fails as asked",
  input: z.strictObject({ how: z.enum(["tool_error", "plain", "long", "control"]) }),
  output: z.strictObject({}),
  handler: ({ how }) => {
    if (how === "tool_error") throw new ToolError("database exploded at step 2", { step: 2 });
    if (how === "long") throw new Error("x".repeat(2000));
    if (how === "control") throw new Error("line one\nline two\u001b[31m red");
    throw new Error("connection refused: 10.0.0.7:5432");
  },
});

function setup(hideToolErrors = false) {
  const made = pair({ tools: [...demoTools, report], hideToolErrors });
  servers.push(made.server);
  return made;
}

async function failure(promise: Promise<unknown>): Promise<SmcpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SmcpError) return error;
    throw error;
  }
  throw new Error("expected an error");
}

describe("bad_args says what to fix", () => {
  it("the SPEC's examples: required, unexpected key, expected type; paths and codes kept", async () => {
    const { client } = setup();
    const missing = await failure(client.call("batch_sum", {}));
    assert.deepEqual(missing.details, {
      issues: [{ path: ["numbers"], code: "invalid_type", message: "numbers: required" }],
      more: 0,
    });
    const extra = await failure(client.call("batch_sum", { numbers: [1], nums: [2] }));
    assert.deepEqual(extra.details, {
      issues: [{ path: [], code: "unrecognized_keys", message: "unexpected key 'nums'" }],
      more: 0,
    });
    const strings = await failure(client.call("batch_sum", { numbers: ["1", 2] }));
    assert.deepEqual(strings.details, {
      issues: [{ path: ["numbers", 0], code: "invalid_type", message: "numbers[0]: expected number, got string" }],
      more: 0,
    });
    const small = await failure(client.call("start_long_task", { seconds: 0, payload: {} }));
    assert.deepEqual((small.details as { issues: unknown[] }).issues, [
      { path: ["seconds"], code: "too_small", message: "seconds: must be at least 1" },
    ]);
  });

  it("a caller's key is shown bounded: at most 64 characters, control characters escaped", async () => {
    const { client } = setup();
    const key = `evil\u001b[2J${"k".repeat(100)}`;
    const error = await failure(client.call("batch_sum", { numbers: [1], [key]: 1 }));
    const message = (error.details as { issues: { message: string }[] }).issues[0]?.message ?? "";
    assert.ok(!message.includes("\u001b"), message);
    assert.match(message, /^unexpected key 'evil\\u001b\[2Jk+…'$/);
    assert.ok(message.length <= 64 + "unexpected key ''".length);
  });

  it("smcp call prints each issue's message", async () => {
    const { server } = setup();
    const running = await serveHttp(server, { port: 0 });
    try {
      const io = captureIO();
      const code = await runCli(["call", "batch_sum", '{"nums":[1]}', ...connectionFlags(running.url)], io);
      assert.equal(code, 1);
      assert.match(io.errText(), /error: bad_args: /);
      assert.match(io.errText(), /^ {2}numbers: required$/m);
      assert.match(io.errText(), /^ {2}unexpected key 'nums'$/m);
    } finally {
      await running.close();
    }
  });
});

describe("tool_failed says why", () => {
  it("a ToolError's message and details reach the caller; a plain error's message too (bounded, escaped)", async () => {
    const { client } = setup();
    const deliberate = await failure(client.call("report", { how: "tool_error" }));
    assert.equal(deliberate.code, "tool_failed");
    assert.equal(deliberate.message, "database exploded at step 2");
    assert.deepEqual(deliberate.details, { step: 2 });
    assert.equal((await failure(client.call("report", { how: "plain" }))).message, "connection refused: 10.0.0.7:5432");
    const long = await failure(client.call("report", { how: "long" }));
    assert.ok(long.message.length <= 512 && long.message.endsWith("…"), `${long.message.length} characters`);
    assert.equal((await failure(client.call("report", { how: "control" }))).message, "line one\\u000aline two\\u001b[31m red");
  });

  it("smcp call prints a ToolError's message and its details", async () => {
    const { server } = setup();
    const running = await serveHttp(server, { port: 0 });
    try {
      const io = captureIO();
      const code = await runCli(["call", "report", '{"how":"tool_error"}', ...connectionFlags(running.url)], io);
      assert.equal(code, 1);
      assert.match(io.errText(), /^error: tool_failed: database exploded at step 2$/m);
      assert.match(io.errText(), /^ {2}details: \{"step":2\}$/m);
    } finally {
      await running.close();
    }
  });

  it("hideToolErrors: unexpected errors read 'the tool failed'; a ToolError still speaks", async () => {
    const { client } = setup(true);
    assert.equal((await failure(client.call("report", { how: "plain" }))).message, "the tool failed");
    assert.equal((await failure(client.call("report", { how: "tool_error" }))).message, "database exploded at step 2");
  });
});
