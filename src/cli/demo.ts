import { createClient } from "../client/client.js";
import { undiciTransport } from "../client/undici.js";
import { createServer } from "../server/core.js";
import { serveHttp } from "../server/http-node.js";
import { demoTools } from "../tools/demo.js";
import { parseCommand } from "./args.js";
import { freshDemoKeys, runDemo } from "./demo-flow.js";
import type { CliIO } from "./io.js";

/** `smcp demo --help`. */
export const DEMO_HELP = `usage: smcp demo

The seed's flow end to end over real HTTP: starts a server on an ephemeral
loopback port with fresh random keys, then calls server_identity, batch_sum,
a failing batch_sum, and a 2 s job polled to done, printing each verified step.`;

/** `smcp demo`. */
export async function demoCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand({ name: "demo", help: DEMO_HELP, options: {} }, argv, io);
  if (!flags) return 0;
  const keys = freshDemoKeys();
  const server = createServer({
    keyring: { serverId: keys.serverId, serverSecrets: keys.serverSecret, clients: { [keys.clientId]: keys.clientSecret } },
    tools: demoTools,
  });
  const running = await serveHttp(server, { port: 0 });
  try {
    io.out(`server '${keys.serverId}' on ${running.url} (ephemeral port, fresh random keys)`);
    const client = createClient({
      clientId: keys.clientId,
      clientSecret: keys.clientSecret,
      serverId: keys.serverId,
      serverSecret: keys.serverSecret,
      transport: undiciTransport(running.url),
    });
    await runDemo(client, io.out);
  } finally {
    await running.close();
  }
  return 0;
}
