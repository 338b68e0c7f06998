// `smcp mcp`: the official MCP SDK client drives the built CLI over stdio, against a real smcp HTTP server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type RunningServer, serveHttp } from "../src/http.js";
import { createClient, createServer, defineTool, demoTools, httpTransport, type SmcpServer, ToolError } from "../src/index.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";
import { BIN, freePort } from "./process-helpers.js";

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Resolves when `signal` aborts. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });

// Step k of `steps` waits until the host has seen progress k: the test moves on events, not on time.
const gates = new Map<number, () => void>();
const gate = (k: number) =>
  new Promise<void>((resolve) => {
    gates.set(k, resolve);
  });
let counted = 0;
// Each `hang` job resolves the promise nextHangStop() gave out before it started, when its signal fires.
let hangAborted: () => void = () => undefined;
const nextHangStop = () =>
  new Promise<void>((resolve) => {
    hangAborted = resolve;
  });

const tools = [
  ...demoTools,
  defineTool({
    name: "greet",
    description: "Greets someone",
    input: z.strictObject({ name: z.string().min(1) }),
    output: z.strictObject({ greeting: z.string() }),
    handler: ({ name }) => ({ greeting: `héllo ${name} ✓ 😀` }),
  }),
  defineTool({
    name: "count",
    description: "Counts its calls",
    input: z.strictObject({}),
    output: z.strictObject({ count: z.number() }),
    handler: () => ({ count: ++counted }),
  }),
  defineTool({
    kind: "job",
    name: "steps",
    description: "Three steps, each reported",
    input: z.strictObject({}),
    output: z.strictObject({ steps: z.number() }),
    handler: async (_args, ctx) => {
      for (let k = 1; k <= 3; k++) {
        await ctx.progress({ done: k, total: 3, message: `step ${k}` });
        await Promise.race([gate(k), aborted(ctx.signal)]);
      }
      return { steps: 3 };
    },
  }),
  defineTool({
    kind: "job",
    name: "hang",
    description: "Runs until cancelled",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: async (_args, ctx) => {
      await ctx.progress({ message: "started" });
      await aborted(ctx.signal);
      hangAborted();
      return {};
    },
  }),
  defineTool({
    kind: "job",
    name: "explode",
    description: "Fails",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: () => {
      throw new Error("internal detail: db password is hunter2");
    },
  }),
  defineTool({
    name: "refuse",
    description: "Fails on purpose, with a hint",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: () => {
      throw new ToolError("there is nobody to greet", { hint: "give a name" });
    },
  }),
];

let server: SmcpServer;
let running: RunningServer;
let url: string;

before(async () => {
  server = createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
    tools,
  });
  running = await serveHttp(server, { host: "127.0.0.1", port: 0 });
  url = `${running.url.replace(/\/mcp$/, "")}/mcp`;
});
after(async () => {
  await running.close();
});

interface Host {
  client: Client;
  errors: Error[];
  stderr(): string;
  close(): Promise<void>;
}

/** Starts `smcp mcp` as an MCP host would (the SDK's stdio client transport) and connects the SDK client. */
async function host(args: string[], env: Record<string, string> = {}): Promise<Host> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp", "--demo-tools", ...args],
    env: { SMCP_CONFIG: "/nonexistent/keyring.json", ...env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const client = new Client({ name: "test-host", version: "1.0.0" });
  const errors: Error[] = [];
  client.onerror = (error) => errors.push(error);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr, close: () => client.close() };
}

const textOf = (result: CallToolResult) => (result.content[0] as { text: string }).text;

describe("smcp mcp, driven by the MCP SDK client over stdio", () => {
  let h: Host;
  before(async () => {
    // Configured from the environment, exactly as `smcp call` is.
    h = await host([], {
      SMCP_URL: url,
      SMCP_CLIENT_ID: CLIENT_ID,
      SMCP_CLIENT_SECRET: CLIENT_SECRET,
      SMCP_SERVER_ID: SERVER_ID,
      SMCP_SERVER_SECRET: SERVER_SECRET,
    });
  });
  after(async () => {
    await h.close();
    // Nothing but MCP JSON-RPC came on stdout: any other line would have been a parse error here.
    assert.deepEqual(h.errors, []);
    assert.match(h.stderr(), /smcp mcp: serving MCP on stdio for http:\/\/127\.0\.0\.1:\d+\/mcp as client 'client-001'/);
  });

  it("tools/list: the server's tools with their JSON Schemas, without the plumbing", async () => {
    const { tools: listed } = await h.client.listTools();
    const names = listed.map((tool) => tool.name);
    for (const name of ["server_identity", "batch_sum", "start_long_task", "greet", "steps", "hang"]) {
      assert.ok(names.includes(name), name);
    }
    for (const name of ["poll_job", "cancel_job", "list_jobs", "list_tools"]) assert.ok(!names.includes(name), name);
    const sum = listed.find((tool) => tool.name === "batch_sum");
    assert.equal(sum?.inputSchema.type, "object");
    assert.deepEqual(sum?.inputSchema.required, ["numbers"]);
    assert.equal(sum?.inputSchema.$schema, undefined);
    assert.deepEqual(sum?.outputSchema?.required, ["count", "total"]);
  });

  it("tools/call of a sync tool: one signed call; structuredContent and its JSON as text", async () => {
    const result = (await h.client.callTool({ name: "batch_sum", arguments: { numbers: [1, 2, 3.5] } })) as CallToolResult;
    assert.deepEqual(result.structuredContent, { count: 3, total: 6.5 });
    assert.deepEqual(JSON.parse(textOf(result)), { count: 3, total: 6.5 });
    assert.equal(result.isError, undefined);
    const greeting = (await h.client.callTool({ name: "greet", arguments: { name: "Zoë" } })) as CallToolResult;
    assert.deepEqual(greeting.structuredContent, { greeting: "héllo Zoë ✓ 😀" });
  });

  it("a job tool: started, followed to its end, each progress change a notifications/progress", async () => {
    const seen: Progress[] = [];
    const result = (await h.client.callTool({ name: "steps", arguments: {} }, undefined, {
      onprogress: (progress) => {
        seen.push(progress);
        gates.get(progress.progress)?.();
      },
    })) as CallToolResult;
    assert.deepEqual(result.structuredContent, { steps: 3 });
    assert.deepEqual(
      seen.map(({ progress, total, message }) => ({ progress, total, message })),
      [1, 2, 3].map((k) => ({ progress: k, total: 3, message: `step ${k}` })),
    );
  });

  it("the host's cancel (notifications/cancelled) cancels the job on the server", async () => {
    const controller = new AbortController();
    const hangStopped = nextHangStop();
    await assert.rejects(
      h.client.callTool({ name: "hang", arguments: {} }, undefined, {
        signal: controller.signal,
        onprogress: () => controller.abort(new Error("user pressed stop")),
      }),
      /user pressed stop/,
    );
    await hangStopped; // the handler's AbortSignal fired on the server
    const direct = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(url),
    });
    const { jobs } = (await direct.call("list_jobs", { limit: 1 })) as { jobs: { tool: string; state: string }[] };
    assert.deepEqual(
      jobs.map(({ tool, state }) => ({ tool, state })),
      [{ tool: "hang", state: "cancelled" }],
    );
  });

  it("bad arguments: isError, the text starting with bad_args and naming the issue", async () => {
    const result = (await h.client.callTool({ name: "batch_sum", arguments: { numbers: "1,2" } })) as CallToolResult;
    assert.equal(result.isError, true);
    assert.equal(
      textOf(result),
      "bad_args: the arguments do not match the tool's input schema\n  numbers: expected array, got string",
    );
    const extra = (await h.client.callTool({ name: "greet", arguments: { name: "x", admin: true } })) as CallToolResult;
    assert.equal(textOf(extra), "bad_args: the arguments do not match the tool's input schema\n  unexpected key 'admin'");
  });

  it("unknown and plumbing tools, and a failing job, are tool errors with their codes; a failure says why (SPEC §5)", async () => {
    const unknown = (await h.client.callTool({ name: "no_such_tool", arguments: {} })) as CallToolResult;
    assert.equal(unknown.isError, true);
    assert.match(textOf(unknown), /^unknown_tool: /);
    const plumbing = (await h.client.callTool({ name: "poll_job", arguments: { job_id: "x" } })) as CallToolResult;
    assert.equal(textOf(plumbing), "unknown_tool: this tool is smcp plumbing, not offered over MCP");
    const failed = (await h.client.callTool({ name: "explode", arguments: {} })) as CallToolResult;
    assert.equal(failed.isError, true);
    assert.equal(textOf(failed), "tool_failed: internal detail: db password is hunter2");
    // A ToolError's details reach the model too (the hint is what it needs to try again).
    const refused = (await h.client.callTool({ name: "refuse", arguments: {} })) as CallToolResult;
    assert.equal(refused.isError, true);
    assert.equal(textOf(refused), 'tool_failed: there is nobody to greet\n  details: {"hint":"give a name"}');
  });
});

describe("smcp mcp with the wrong keys or no server", () => {
  const flags = (overrides: Record<string, string>) => {
    const all: Record<string, string> = {
      "--url": url,
      "--client-id": CLIENT_ID,
      "--client-secret": CLIENT_SECRET,
      "--server-id": SERVER_ID,
      "--server-key": SERVER_SECRET,
      ...overrides,
    };
    return Object.entries(all).flat();
  };

  it("a wrong server key: the answers fail verification, so tools/list fails and calls are isError, never results", async () => {
    const h = await host(flags({ "--server-key": "not-the-server-secret-at-all" }));
    try {
      await assert.rejects(h.client.listTools(), /bad_signature: the response signature does not verify with the server's key/);
      const result = (await h.client.callTool({ name: "greet", arguments: { name: "x" } })) as CallToolResult;
      assert.equal(result.isError, true);
      assert.equal(result.structuredContent, undefined);
      assert.match(textOf(result), /^bad_signature: the response signature does not verify/);
      assert.match(textOf(result), /\nhint: the answer is not signed with the server key you gave/);
    } finally {
      await h.close();
    }
  });

  it("a wrong client secret: the server refuses before running anything", async () => {
    const h = await host(flags({ "--client-secret": "not-this-clients-secret" }));
    try {
      const before = counted;
      const result = (await h.client.callTool({ name: "count", arguments: {} })) as CallToolResult;
      assert.equal(result.isError, true);
      assert.match(
        textOf(result),
        /^bad_signature: the signature does not verify\nhint: the server rejected this client's signature/,
      );
      assert.equal(counted, before, "nothing ran");
    } finally {
      await h.close();
    }
  });

  it("no server at the URL: isError unavailable with a hint", async () => {
    const h = await host(flags({ "--url": `http://127.0.0.1:${await freePort()}/mcp` }));
    try {
      const result = (await h.client.callTool({ name: "greet", arguments: { name: "x" } })) as CallToolResult;
      assert.equal(result.isError, true);
      assert.match(
        textOf(result),
        /^unavailable: could not reach http:\/\/127\.0\.0\.1:\d+\/mcp: ECONNREFUSED\nhint: is the server running/,
      );
    } finally {
      await h.close();
    }
  });
});

describe("smcp mcp as a process", () => {
  // Flags and variables mixed, and the server's key under its new names (--server-key / SMCP_SERVER_KEY).
  const connection = () => ["--url", url, "--client-id", CLIENT_ID];
  const rawEnv = {
    PATH: process.env.PATH,
    SMCP_CONFIG: "/nonexistent/keyring.json",
    SMCP_CLIENT_SECRET: CLIENT_SECRET,
    SMCP_SERVER_ID: SERVER_ID,
    SMCP_SERVER_KEY: SERVER_SECRET,
  };

  it("stdout is JSON-RPC only; it exits 0 when the host closes stdin", async () => {
    const child = spawn(process.execPath, [BIN, "mcp", "--demo-tools", ...connection()], {
      env: rawEnv,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = once(child, "exit");
    const lines: string[] = [];
    const reader = createInterface({ input: child.stdout });
    reader.on("line", (line) => lines.push(line));
    const first = once(reader, "line");
    child.stdin.write(
      `${JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
      })}\n`,
    );
    await first;
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
    const second = once(reader, "line");
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" })}\n`);
    await second;
    child.stdin.end();
    const [code] = await exited;
    assert.equal(code, 0);
    const messages = lines.map((line) => JSON.parse(line) as { jsonrpc: string; id: number; result: Record<string, unknown> });
    assert.equal(messages.length, 2);
    assert.equal(messages[0]?.jsonrpc, "2.0");
    assert.deepEqual(messages[0]?.result.serverInfo, { name: "smcp", version: VERSION });
    const listed = messages[1]?.result.tools;
    assert.ok(Array.isArray(listed) && listed.length > 0);
  });

  it("a host that goes away mid-job: its job is cancelled on the server, and smcp mcp exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "mcp", "--demo-tools", ...connection()], {
      env: rawEnv,
      stdio: ["pipe", "pipe", "ignore"],
    });
    const exited = once(child, "exit");
    const reader = createInterface({ input: child.stdout });
    const send = (message: object) => child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...message })}\n`);
    send({
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    });
    await once(reader, "line");
    send({ method: "notifications/initialized" });
    const hangStopped = nextHangStop();
    const progressed = new Promise<void>((resolve) =>
      reader.on("line", (line) => {
        if ((JSON.parse(line) as { method?: string }).method === "notifications/progress") resolve();
      }),
    );
    send({ id: 2, method: "tools/call", params: { name: "hang", arguments: {}, _meta: { progressToken: "p1" } } });
    await progressed; // the job runs
    child.stdin.end();
    await hangStopped; // cancelled on the server, its handler's signal fired
    const [code] = await exited;
    assert.equal(code, 0);
  });

  it("--help goes to stdout and exits 0; a missing setting is one line on stderr, exit 2", async () => {
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, [BIN, "mcp", "--demo-tools", ...args], {
        env: { PATH: process.env.PATH, SMCP_CONFIG: "/nonexistent/keyring.json" },
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (c) => {
        out += c;
      });
      child.stderr.on("data", (c) => {
        err += c;
      });
      const [code] = await once(child, "exit");
      return { code, out, err };
    };
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: smcp mcp/);
    const missing = await run(["--url", url]);
    assert.equal(missing.code, 2);
    assert.equal(missing.out, "");
    assert.match(missing.err, /^smcp: missing client id: pass --client-id ID or set SMCP_CLIENT_ID/);
  });
});
