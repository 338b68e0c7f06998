/**
 * The bridge survives its host (issue 18): an oversized or malformed stdin
 * line is answered with a JSON-RPC error and skipped, the next request is
 * served; the remote tool list is cached, not fetched per call.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { type RunningServer, serveHttp } from "../src/http.js";
import { createServer, demoTools, type SmcpServer } from "../src/index.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";
import { BIN } from "./process-helpers.js";

let server: SmcpServer;
let running: RunningServer;
const calls = { list_tools: 0, batch_sum: 0 };
before(async () => {
  server = createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
    tools: demoTools,
    observer: {
      request: (event) => {
        if (event.tool === "list_tools" || event.tool === "batch_sum") calls[event.tool]++;
      },
    },
  });
  running = await serveHttp(server, { port: 0 });
});
after(async () => {
  await running.close();
});

/** `smcp mcp` with a raw JSON-RPC conversation on its stdio. */
function bridge(extra: string[] = []) {
  const args = [
    "mcp",
    ...extra,
    "--url",
    running.url,
    "--client-id",
    CLIENT_ID,
    "--server-id",
    SERVER_ID,
    "--server-key",
    SERVER_SECRET,
  ];
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, SMCP_CLIENT_SECRET: CLIENT_SECRET, SMCP_CONFIG: "/nonexistent/keyring.json" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const answers = new Map<unknown, Record<string, unknown>>();
  const waiting = new Map<unknown, (answer: Record<string, unknown>) => void>();
  const nulls: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const message = JSON.parse(line) as Record<string, unknown>;
    if (message.id === null) nulls.push(message);
    answers.set(message.id, message);
    waiting.get(message.id)?.(message);
  });
  // A bridge that exits fails the waiting requests instead of leaving them hanging.
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code) => reject(new Error(`smcp mcp exited (code ${code}): ${stderr}`)));
  });
  exited.catch(() => undefined);
  const request = (id: number, method: string, params?: object) => {
    const answer = new Promise<Record<string, unknown>>((resolve) => {
      const known = answers.get(id);
      if (known) resolve(known);
      else waiting.set(id, resolve);
    });
    const answered = Promise.race([answer, exited]);
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) })}\n`);
    return answered;
  };
  const start = async () => {
    await request(1, "initialize", {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "raw", version: "0" },
    });
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
  };
  return { child, request, start, nulls, stderr: () => stderr };
}

describe("smcp mcp survives its host", () => {
  it("a 20 MB line and a malformed one are answered with JSON-RPC errors; the next request is served", async () => {
    const b = bridge();
    await b.start();
    const exited = once(b.child, "exit");
    // 20 MB in pieces, as a pipe delivers it: never held whole.
    const piece = "x".repeat(1024 * 1024);
    for (let i = 0; i < 20; i++) b.child.stdin.write(piece);
    b.child.stdin.write("\n");
    b.child.stdin.write("{ this is not json\n");
    const listed = await b.request(2, "tools/list");
    const names = (listed.result as { tools: { name: string }[] }).tools.map((t) => t.name);
    // The demo tools are not offered to a model unless asked for (--demo-tools).
    assert.ok(!names.includes("batch_sum") && !names.includes("start_long_task"), names.join(", "));
    assert.equal(b.child.exitCode, null, "still running");
    const codes = b.nulls.map((m) => (m.error as { code: number }).code);
    assert.deepEqual(codes, [-32600, -32700]);
    assert.match(b.stderr(), /skipped a stdin line longer than/);
    b.child.stdin.end();
    const [code] = await exited;
    assert.equal(code, 0);
  });

  it("the tool list is cached: 200 calls of a listed tool cost at most one list_tools", async () => {
    const b = bridge(["--demo-tools"]);
    await b.start();
    const listed = await b.request(2, "tools/list");
    assert.ok(
      (listed.result as { tools: { name: string }[] }).tools.some((t) => t.name === "batch_sum"),
      "asked for",
    );
    const before = { ...calls };
    for (let i = 0; i < 200; i++) {
      const answer = await b.request(10 + i, "tools/call", { name: "batch_sum", arguments: { numbers: [i] } });
      assert.equal((answer.result as { isError?: boolean }).isError, undefined, JSON.stringify(answer));
    }
    // Unknown names refresh the list at most once a second, not once per call.
    for (let i = 0; i < 50; i++) await b.request(1000 + i, "tools/call", { name: "no_such_tool", arguments: {} });
    assert.equal(calls.batch_sum - before.batch_sum, 200);
    assert.ok(calls.list_tools - before.list_tools <= 2, `${calls.list_tools - before.list_tools} list_tools for 250 calls`);
    b.child.stdin.end();
    await once(b.child, "exit");
  });
});
