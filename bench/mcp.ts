// What the MCP bridges cost, each against the direct path with the same tool and the same client load
// (N calls, C in flight at once, after a warm-up), loopback only, bounded:
//
//   gateway:  MCP SDK client → server-everything `get-sum` directly (stdio, and Streamable HTTP), versus
//             smcp client → signed HTTP → `smcp serve --mcp-upstream server-everything` → the same `get-sum`.
//   smcp mcp: smcp client → `smcp serve` `batch_sum` directly (signed HTTP), versus
//             MCP SDK client → `smcp mcp` (stdio) → signed HTTP → the same `smcp serve` `batch_sum`.
//
//   npm run build && node --import tsx bench/mcp.ts [--calls 2000] [--concurrency 16] [--warmup 200]
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { createClient, httpTransport } from "../src/index.js";
import { freePort } from "../test/process-helpers.js";
import { BENCH } from "./fixtures.js";
import { startPeer } from "./peer.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    warmup: { type: "string", default: "200" },
  },
});
const CALLS = Number(values.calls);
const CONCURRENCY = Number(values.concurrency);
const WARMUP = Number(values.warmup);

const BIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const EVERYTHING = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url),
);
const KEYS = ["--server-id", "bench", "--server-secret", BENCH.serverSecret, "--client", `bench=${BENCH.clientSecret}`];

interface Figures {
  path: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Runs `call` CALLS times, CONCURRENCY at once (after WARMUP calls), and measures each call. */
async function measure(path: string, call: () => Promise<boolean>): Promise<Figures> {
  const run = async (count: number, latencies?: Float64Array) => {
    let next = 0;
    let errors = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const started = performance.now();
        const ok = await call().catch(() => false);
        if (!ok) errors++;
        if (latencies) latencies[i] = performance.now() - started;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return errors;
  };
  await run(WARMUP);
  const latencies = new Float64Array(CALLS);
  const t0 = performance.now();
  const errors = await run(CALLS, latencies);
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort();
  const at = (q: number) => latencies[Math.min(CALLS - 1, Math.floor(q * CALLS))] ?? 0;
  return { path, rps: CALLS / seconds, p50: at(0.5), p99: at(0.99), errors };
}

async function mcpClient(transport: Transport): Promise<Client> {
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(transport);
  return client;
}

const sumText = "The sum of 1 and 2 is 3.";
const sumOk = (result: CallToolResult) => (result.content[0] as { text?: string } | undefined)?.text === sumText;

function table(title: string, rows: Figures[]): void {
  const base = rows[0] as Figures;
  console.log(`\n${title}\n`);
  console.log("| path | calls/s | p50 ms | p99 ms | errors | p50 over direct |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const row of rows) {
    const over = row === base ? "—" : `+${(row.p50 - base.p50).toFixed(2)} ms`;
    console.log(
      `| ${row.path} | ${row.rps.toFixed(0)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.errors} | ${over} |`,
    );
  }
}

console.log(`calls ${CALLS}, concurrency ${CONCURRENCY}, warm-up ${WARMUP}; loopback; nothing pinned`);

// 1. The gateway.
{
  const rows: Figures[] = [];
  const stdio = await mcpClient(
    new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" }),
  );
  rows.push(
    await measure("MCP SDK client → server-everything (stdio)", async () =>
      sumOk((await stdio.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } })) as CallToolResult),
    ),
  );
  await stdio.close();

  const port = await freePort();
  const httpPeer = await startHttpEverything(port);
  const http = await mcpClient(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
  rows.push(
    await measure("MCP SDK client → server-everything (Streamable HTTP)", async () =>
      sumOk((await http.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } })) as CallToolResult),
    ),
  );
  await http.close();
  httpPeer.kill("SIGKILL");

  const serve = await startPeer(
    [BIN, "serve", "--port", "0", "--store", "memory", ...KEYS, "--mcp-upstream", `${process.execPath} ${EVERYTHING} stdio`],
    0,
  );
  const smcp = createClient({
    clientId: "bench",
    clientSecret: BENCH.clientSecret,
    serverId: "bench",
    serverSecret: BENCH.serverSecret,
    transport: httpTransport(`${serve.url}/mcp`),
  });
  rows.push(
    await measure("smcp client → smcp serve --mcp-upstream → server-everything (stdio)", async () => {
      const result = (await smcp.call("get-sum", { a: 1, b: 2 })) as unknown as CallToolResult;
      return sumOk(result);
    }),
  );
  await serve.stop();
  table("### Gateway: `get-sum` on server-everything, directly and through `smcp serve --mcp-upstream`", rows);
}

// 2. smcp mcp.
{
  const rows: Figures[] = [];
  const serve = await startPeer([BIN, "serve", "--port", "0", "--store", "memory", ...KEYS], 0);
  const url = `${serve.url}/mcp`;
  const smcp = createClient({
    clientId: "bench",
    clientSecret: BENCH.clientSecret,
    serverId: "bench",
    serverSecret: BENCH.serverSecret,
    transport: httpTransport(url),
  });
  rows.push(
    await measure("smcp client → smcp serve (signed HTTP)", async () => {
      const result = (await smcp.call("batch_sum", { numbers: [1, 2, 3] })) as { total: number };
      return result.total === 6;
    }),
  );
  const bridge = await mcpClient(
    new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "mcp", "--url", url, "--client-id", "bench", "--client-secret", BENCH.clientSecret, "--server-id", "bench"],
      env: { SMCP_SERVER_SECRET: BENCH.serverSecret, SMCP_CONFIG: "/nonexistent/keyring.json" },
      stderr: "ignore",
    }),
  );
  rows.push(
    await measure("MCP SDK client → smcp mcp (stdio) → smcp serve (signed HTTP)", async () => {
      const result = (await bridge.callTool({ name: "batch_sum", arguments: { numbers: [1, 2, 3] } })) as CallToolResult;
      return (result.structuredContent as { total?: number } | undefined)?.total === 6;
    }),
  );
  await bridge.close();
  await serve.stop();
  table("### `smcp mcp`: `batch_sum` on `smcp serve`, directly and through `smcp mcp`", rows);
}

/** server-everything in its Streamable HTTP mode on `port`, once it accepts connections. */
async function startHttpEverything(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [EVERYTHING, "streamableHttp"], {
    env: { ...process.env, PORT: String(port) },
    stdio: "ignore",
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const up = await fetch(`http://127.0.0.1:${port}/mcp`).then(
      () => true,
      () => false,
    );
    if (up) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill("SIGKILL");
  throw new Error("server-everything (Streamable HTTP) did not start");
}
