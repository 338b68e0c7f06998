#!/usr/bin/env node
import { createClient } from "../client/client.js";
import { inProcessTransport } from "../client/transport.js";
import { freshDemoKeys, runDemo } from "../demo.js";
import { createServer } from "../server/core.js";

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === "demo") {
    const keys = freshDemoKeys();
    const server = createServer({
      keyring: { serverId: keys.serverId, serverSecrets: keys.serverSecret, clients: { [keys.clientId]: keys.clientSecret } },
    });
    const client = createClient({
      clientId: keys.clientId,
      clientSecret: keys.clientSecret,
      serverId: keys.serverId,
      serverSecret: keys.serverSecret,
      transport: inProcessTransport(server),
    });
    try {
      await runDemo(client);
    } finally {
      await server.close();
    }
    return 0;
  }
  process.stderr.write("usage: smcp demo\n");
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`smcp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
