// The README's MCP example, runnable: `npx tsx examples/mcp.ts`.
// An MCP server's tools offered as signed smcp tools beside your own, then the
// same server offered back to MCP hosts through the bridge.

import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { createClient, createServer, defineTool, inProcessTransport } from "smcp";
import { createMcpBridge, mcpUpstreamTools } from "smcp/mcp";
import { z } from "zod";

const weather = defineTool({
  name: "weather",
  description: "Current temperature in a city",
  input: z.strictObject({ city: z.string().min(1) }),
  output: z.strictObject({ city: z.string(), celsius: z.number() }),
  handler: ({ city }) => ({ city, celsius: 21.5 }),
});

// Any MCP server: a command that speaks MCP on stdio (here the reference server, installed
// locally; `"npx -y @modelcontextprotocol/server-everything"` works the same), or an http(s):// URL.
const everything = fileURLToPath(import.meta.resolve("@modelcontextprotocol/server-everything/dist/index.js"));
const upstream = await mcpUpstreamTools(
  { command: process.execPath, args: [everything, "stdio"] },
  {
    jobs: false, // true: every upstream tool becomes a job tool (progress, cancel_job)
    reservedNames: [weather.name], // a clash with your own tools refuses to start
    onLog: () => undefined, // the upstream's stderr, restarts
  },
);

const serverSecret = "server-secret-at-least-16-bytes";
const clientSecret = "agent-secret-at-least-16-bytes";
const server = createServer({
  keyring: { serverId: "gateway", serverSecrets: serverSecret, clients: { "agent-7": clientSecret } },
  tools: [weather, ...upstream.tools],
});
const client = createClient({
  clientId: "agent-7",
  clientSecret,
  serverId: "gateway",
  serverSecret,
  transport: inProcessTransport(server), // or httpTransport("http://127.0.0.1:8787/mcp")
});

// A bridged tool's result is the MCP CallToolResult, signed and verified like any smcp result.
const sum = (await client.call("get-sum", { a: 2, b: 3 })) as { content: { type: string; text: string }[] };
console.log(`get-sum: ${sum.content[0]?.text}`);

// The other way: an MCP server (what `smcp mcp` runs on stdio) forwarding to the smcp server.
const bridge = createMcpBridge({ client });
const [hostSide, bridgeSide] = InMemoryTransport.createLinkedPair();
await bridge.connect(bridgeSide);
const host = new Client({ name: "example-host", version: "1.0.0" });
await host.connect(hostSide);
const answer = await host.callTool({ name: "weather", arguments: { city: "Lisbon" } });
console.log(`weather over MCP: ${JSON.stringify(answer.structuredContent)}`);

await host.close();
await server.close();
await upstream.close(); // stops the upstream process
