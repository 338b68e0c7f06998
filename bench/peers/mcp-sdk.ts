// Peer 2: the official MCP TypeScript SDK in its stateless Streamable HTTP
// mode (no sessions, JSON responses), with the same batch_sum tool (zod input
// and output schema), called with tools/call. As the SDK's stateless example
// does, a server and transport are made per request. Prints its URL.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

function makeServer(): McpServer {
  const server = new McpServer({ name: "bench", version: "1.0.0" });
  server.registerTool(
    "batch_sum",
    {
      description: "Adds a non-empty list of numbers",
      inputSchema: { numbers: z.array(z.number()).min(1) },
      outputSchema: { count: z.number().int(), total: z.number() },
    },
    async ({ numbers }) => {
      let total = 0;
      for (const n of numbers) total += n;
      const out = { count: numbers.length, total };
      return { content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out };
    },
  );
  return server;
}

const http = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const server = makeServer();
    // Stateless mode: no session id generator at all.
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, JSON.parse(Buffer.concat(chunks).toString("utf8")));
  });
});
http.keepAliveTimeout = 30_000;
http.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(http.address() as AddressInfo).port}`);
});
process.once("SIGTERM", () => http.close(() => process.exit(0)));
