// The README's library example, runnable: `npx tsx examples/library.ts`.

import { createClient, createServer, defineTool, inProcessTransport } from "smcp";
import { z } from "zod";

// A synchronous tool: zod in, zod out.
const weather = defineTool({
  name: "weather",
  description: "Current temperature in a city",
  input: z.strictObject({ city: z.string().min(1) }),
  output: z.strictObject({ city: z.string(), celsius: z.number() }),
  handler: ({ city }) => ({ city, celsius: 21.5 }),
});

// A job tool: answers `accepted` at once; progress and cancellation come for free.
const report = defineTool({
  kind: "job",
  name: "report",
  description: "Builds a report, one page at a time",
  input: z.strictObject({ pages: z.number().int().min(1).max(5) }),
  output: z.strictObject({ pages: z.number(), title: z.string() }),
  timeoutMs: 10_000,
  handler: async ({ pages }, ctx) => {
    for (let page = 1; page <= pages; page++) {
      ctx.signal.throwIfAborted(); // cancel_job or the timeout stops the work
      await new Promise((r) => setTimeout(r, 50));
      await ctx.progress({ page, pages });
    }
    return { pages, title: "Quarterly numbers" };
  },
});

const serverSecret = "server-secret-at-least-16-bytes";
const clientSecret = "agent-secret-at-least-16-bytes";

const server = createServer({
  keyring: { serverId: "weather-svc", serverSecrets: serverSecret, clients: { "agent-7": clientSecret } },
  tools: [weather, report],
});

const client = createClient({
  clientId: "agent-7",
  clientSecret,
  serverId: "weather-svc",
  serverSecret,
  transport: inProcessTransport(server), // or httpTransport("http://127.0.0.1:8787/mcp")
});

const now = await client.call(weather, { city: "Lisbon" }); // typed: { city: string; celsius: number }
console.log(`${now.city}: ${now.celsius} °C`);

const done = await client.callAndWait(
  report,
  { pages: 3 },
  { pollIntervalMs: 20, onProgress: (p) => p && console.log("progress", p) },
);
console.log(`report: ${done.title}, ${done.pages} pages`);

await server.close();
