import { readFileSync } from "node:fs";
import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { callCommand } from "./call.js";
import { demoCommand } from "./demo.js";
import type { CliIO } from "./io.js";
import { jobsCommand } from "./jobs.js";
import { keygenCommand } from "./keygen.js";
import { withTelemetry } from "./otel.js";
import { describeFailure } from "./output.js";
import { serveCommand } from "./serve.js";
import { toolsCommand } from "./tools.js";
import { waitCommand } from "./wait.js";
import { workerCommand } from "./worker.js";

const USAGE = `usage: smcp COMMAND [options]

commands:
  serve     run a server over HTTP (creates .smcp/keyring.json on first run)
  call      call a tool and verify the answer: smcp call TOOL [ARGS_JSON] [--wait] [--json]
  wait      follow a job to its end: smcp wait JOB_ID
  jobs      list this client's recent jobs
  tools     list the server's tools and their JSON Schemas
  console   a web console for the server's tools and jobs, on 127.0.0.1 (every answer verified)
  clients   manage the client registry (keys, scopes, limits): add, list, show, scopes, rotate, disable, enable, remove
  keygen    print a new random secret, or an Ed25519 key pair (--alg ed25519)
  demo      the seed's flow end to end over HTTP, with fresh keys
  worker    execute jobs from a shared store (redis://, postgres://, sqlite:), beside API replicas
  migrate   create or upgrade a PostgreSQL store's schema: smcp migrate --store postgres://…
  mcp       an MCP server on stdio forwarding to an smcp server (for Claude Desktop, Cursor, the Inspector)

\`smcp COMMAND --help\` tells more; \`smcp --version\` prints the version.`;

const COMMANDS = new Map<string, (argv: string[], io: CliIO) => Promise<number>>([
  ["serve", (argv, io) => withTelemetry("serve", io.env, () => serveCommand(argv, io))],
  ["call", callCommand],
  ["wait", waitCommand],
  ["jobs", jobsCommand],
  ["tools", toolsCommand],
  // Loaded on use: only this command needs the console's HTTP server.
  ["console", async (argv, io) => (await import("./console.js")).consoleCommand(argv, io)],
  ["keygen", keygenCommand],
  // Loaded on use: only this command edits the client registry.
  ["clients", async (argv, io) => (await import("./clients.js")).clientsCommand(argv, io)],
  ["demo", demoCommand],
  ["worker", (argv, io) => withTelemetry("worker", io.env, () => workerCommand(argv, io))],
  // Loaded on use, like the pg driver it needs.
  ["migrate", async (argv, io) => (await import("./migrate.js")).migrateCommand(argv, io)],
  // Loaded on use: only this command needs the MCP SDK.
  ["mcp", (argv, io) => withTelemetry("mcp", io.env, async () => (await import("./mcp.js")).mcpCommand(argv, io))],
]);

/** Runs the CLI; resolves to the exit status. Never throws: errors become one line on stderr. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    io.out(version());
    return 0;
  }
  const command = COMMANDS.get(name);
  if (!command) {
    io.err(`smcp: unknown command '${name}'; try one of: ${[...COMMANDS.keys()].join(", ")}`);
    return 2;
  }
  try {
    return await command(rest, io);
  } catch (error) {
    if (error instanceof SmcpUsageError) io.err(`smcp: ${error.message}`);
    else if (error instanceof SmcpError) for (const line of describeFailure(error)) io.err(line);
    else io.err(`smcp: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
}

/** This package's version, from its package.json. */
export function version(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return `smcp ${(JSON.parse(text) as { version: string }).version}`;
}
