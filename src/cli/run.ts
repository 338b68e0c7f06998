import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { callCommand } from "./call.js";
import { demoCommand } from "./demo.js";
import type { CliIO } from "./io.js";
import { keygenCommand } from "./keygen.js";
import { serveCommand } from "./serve.js";
import { toolsCommand } from "./tools.js";
import { workerCommand } from "./worker.js";

const USAGE = `usage: smcp COMMAND [options]

commands:
  serve     run a server over HTTP (creates .smcp/keyring.json on first run)
  call      call a tool and verify the answer: smcp call TOOL [ARGS_JSON] [--wait] [--json]
  tools     list the server's tools and their JSON Schemas
  keygen    print a new random secret
  demo      the seed's flow end to end over HTTP, with fresh keys
  worker    execute jobs from a shared store (redis://), beside API replicas

\`smcp COMMAND --help\` tells more.`;

const COMMANDS = new Map<string, (argv: string[], io: CliIO) => Promise<number>>([
  ["serve", serveCommand],
  ["call", callCommand],
  ["tools", toolsCommand],
  ["keygen", keygenCommand],
  ["demo", demoCommand],
  ["worker", workerCommand],
]);

/** Runs the CLI; resolves to the exit status. Never throws: errors become one line on stderr. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(USAGE);
    return name === undefined ? 2 : 0;
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
    else if (error instanceof SmcpError) io.err(`smcp: ${error.code}: ${error.message}`);
    else io.err(`smcp: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
}
