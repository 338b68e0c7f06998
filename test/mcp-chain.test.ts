// The whole chain, every part real: MCP SDK client → `smcp mcp` (stdio) → signed HTTP →
// `smcp serve --mcp-upstream` → server-everything (stdio).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { runCli } from "../src/cli/run.js";
import { captureIO } from "./cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, until } from "./helpers.js";
import { alive, EVERYTHING_CMD } from "./mcp-helpers.js";
import { BIN, type Child, startCli } from "./process-helpers.js";

const KEYS = { SMCP_CONFIG: "/nonexistent/keyring.json", SMCP_SERVER_ID: SERVER_ID, SMCP_SERVER_SECRET: SERVER_SECRET };
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
});

/** `smcp serve` with server-everything behind it; resolves once it listens. */
async function serve(...extra: string[]): Promise<{ child: Child; url: string }> {
  const child = await startCli(
    [
      "serve",
      "--port",
      "0",
      "--store",
      "memory",
      "--client",
      `${CLIENT_ID}=${CLIENT_SECRET}`,
      "--mcp-upstream",
      EVERYTHING_CMD,
      // The demo tools beside an upstream only when asked: asked here, to see both kinds listed.
      "--demo-tools",
      ...extra,
    ],
    KEYS,
  );
  children.push(child);
  return { child, url: `${child.line.replace(/^listening on /, "")}/mcp` };
}

/** An MCP host's view: the SDK client over stdio to `smcp mcp`. */
async function host(url: string): Promise<Client> {
  const client = new Client({ name: "chain-host", version: "1.0.0" });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "mcp", "--demo-tools", "--url", url, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
      env: KEYS,
      stderr: "ignore",
    }),
  );
  return client;
}

const textOf = (result: CallToolResult) => (result.content[0] as { text: string }).text;

/** Process ids of a process's children. */
function childPids(pid: number): number[] {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .split("\n")
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

describe("MCP client → smcp mcp → signed HTTP → smcp serve --mcp-upstream → server-everything", () => {
  it("sync tools: list, calls (content handed on as the upstream made it), structured content, bad args; shutdown stops the upstream", async () => {
    const { child, url } = await serve();
    const upstreams = childPids(child.process.pid as number);
    assert.equal(upstreams.length, 1, "server-everything runs under smcp serve");
    const client = await host(url);
    try {
      const { tools } = await client.listTools();
      const sum = tools.find((tool) => tool.name === "get-sum");
      assert.deepEqual(sum?.inputSchema.required, ["a", "b"]);
      assert.equal(sum?.description, "Returns the sum of two numbers");
      assert.ok(
        tools.some((tool) => tool.name === "batch_sum"),
        "the server's own tools too",
      );
      const structured = tools.find((tool) => tool.name === "get-structured-content");
      assert.deepEqual(structured?.outputSchema?.required, ["temperature", "conditions", "humidity"]);

      const result = (await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } })) as CallToolResult;
      assert.deepEqual(result, { content: [{ type: "text", text: "The sum of 1 and 2 is 3." }] });
      const message = "Grüße, 世界 — ✓ 😀";
      const echoed = (await client.callTool({ name: "echo", arguments: { message } })) as CallToolResult;
      assert.equal(textOf(echoed), `Echo: ${message}`);
      // The SDK client checks structuredContent against the outputSchema it listed.
      const weather = (await client.callTool({
        name: "get-structured-content",
        arguments: { location: "New York" },
      })) as CallToolResult;
      assert.equal(typeof (weather.structuredContent as { temperature: unknown }).temperature, "number");
      const bad = (await client.callTool({ name: "get-sum", arguments: { a: 1, b: "two" } })) as CallToolResult;
      assert.equal(bad.isError, true);
      assert.equal(textOf(bad), "bad_args: the arguments do not match the tool's input schema\n  b: expected number, got string");
    } finally {
      await client.close();
    }
    assert.equal(await child.stop("SIGTERM"), 0);
    await until(
      () => childPids(child.process.pid as number).length === 0 && !alive(upstreams[0] as number),
      5000,
      "the upstream to stop",
    );
  });

  it("--mcp-jobs: a long operation is a job; its upstream progress reaches the host as notifications/progress", async () => {
    const { url } = await serve("--mcp-jobs");
    const client = await host(url);
    try {
      const seen: Progress[] = [];
      const result = (await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
        undefined,
        { onprogress: (progress) => seen.push(progress) },
      )) as CallToolResult;
      assert.equal(textOf(result), "Long running operation completed. Duration: 2 seconds, Steps: 4.");
      assert.ok(seen.length >= 1, "progress reached the host");
      for (const progress of seen) {
        assert.equal(progress.total, 4);
        assert.ok(progress.progress >= 1 && progress.progress <= 4);
      }
      assert.deepEqual(
        seen.map((p) => p.progress),
        [...seen.map((p) => p.progress)].sort((a, b) => a - b),
        "progress only grows",
      );
    } finally {
      await client.close();
    }
  });
});

describe("smcp serve's MCP flags", () => {
  const keys = ["--store", "memory", "--server-secret", SERVER_SECRET, "--client", `${CLIENT_ID}=${CLIENT_SECRET}`];
  const run = async (...args: string[]) => {
    const io = captureIO({ SMCP_CONFIG: "/nonexistent/keyring.json" });
    const code = await runCli(["serve", "--port", "0", ...keys, ...args], io);
    return { code, io };
  };

  it("--help documents them", async () => {
    const io = captureIO({});
    assert.equal(await runCli(["serve", "--help"], io), 0);
    assert.match(io.outText(), /--mcp-upstream CMD\|URL/);
    assert.match(io.outText(), /--mcp-jobs/);
  });

  it("an upstream that does not start, or flags that do not go together: one line, exit 2, nothing served", async () => {
    const missing = await run("--mcp-upstream", "/nonexistent/mcp-server --flag");
    assert.equal(missing.code, 2);
    assert.equal(missing.io.errText(), "smcp: MCP upstream #1 (mcp-server) did not start: command not found");
    assert.equal(missing.io.outText(), "", "never listened");
    const piped = await run("--mcp-upstream", "server | tee log");
    assert.equal(piped.code, 2);
    assert.match(piped.io.errText(), /^smcp: an MCP upstream command is run without a shell/);
    const lonely = await run("--mcp-jobs");
    assert.equal(lonely.code, 2);
    assert.equal(lonely.io.errText(), "smcp: --mcp-jobs needs at least one --mcp-upstream");
    const noWorker = await run("--mcp-upstream", EVERYTHING_CMD, "--mcp-jobs", "--no-worker");
    assert.equal(noWorker.code, 2);
    assert.match(noWorker.io.errText(), /--mcp-jobs runs upstream calls as jobs in this process, but --no-worker/);
  });
});
