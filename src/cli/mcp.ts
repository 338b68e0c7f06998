import { createMcpBridge } from "../mcp/bridge.js";
import { BoundedStdioTransport } from "../mcp/stdio.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect } from "./connect.js";
import { type CliIO, stopSignal } from "./io.js";
import { hintFor, oneLine } from "./output.js";

/** `smcp mcp --help`. */
export const MCP_HELP = `usage: smcp mcp [options]

An MCP server on stdio that forwards every tool call to an smcp server,
signed, and verifies every answer. Add it to an MCP host (Claude Desktop,
Cursor, the MCP Inspector) as a local command; the keys stay on this machine.
Configured like \`smcp call\`. stdout carries MCP JSON-RPC only; notes go to
stderr. It ends when the host closes its stdin.

  tools/list   the server's list_tools (verified), without poll_job, cancel_job, list_jobs, list_tools
  tools/call   a sync tool: one signed call, its result as structuredContent and as JSON text;
               a job tool: started and followed to its end, its progress sent as
               notifications/progress (when the host asks), a host's cancel cancels the job
  errors       isError, the text starting with the smcp code (bad_args: ...)

  --demo-tools           also offer the reference tutorial's demo tools (batch_sum,
                         start_long_task) to the model; left out by default

${CONNECTION_HELP}`;

/** `smcp mcp`: serves MCP on stdio until the host closes stdin (or SIGTERM/SIGINT). */
export async function mcpCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    { name: "mcp", help: MCP_HELP, options: { ...CONNECTION_FLAGS, "demo-tools": { type: "boolean" } } },
    argv,
    io,
  );
  if (!flags) return 0;
  const connection = connect(flags, io);
  const log = (line: string) => io.err(`smcp mcp: ${line}`);
  const bridge = createMcpBridge({
    client: connection.client,
    demoTools: flags.boolean("demo-tools"),
    onLog: log,
    hint: (error) => hintFor(error, connection.url),
  });
  const closed = new Promise<void>((resolve) => {
    bridge.onclose = resolve;
  });
  bridge.onerror = (error) => log(oneLine(error.message, 300));
  const stdinEnded = new Promise<void>((resolve) => {
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
  });
  // Bounded lines: an oversized or malformed line from the host is answered and skipped, never fatal.
  await bridge.connect(new BoundedStdioTransport({ onLog: log }));
  // Listening for the stop before the ready line: a signal sent on reading it needs a handler.
  const stopping = stopSignal();
  log(`serving MCP on stdio for ${redactUrl(connection.url)} as client '${connection.client.clientId}'`);
  await Promise.race([closed, stdinEnded, stopping]);
  await bridge.close();
  return 0;
}
