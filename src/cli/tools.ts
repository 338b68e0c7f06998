import { canonicalize } from "../protocol/canonical.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, clientFromFlags } from "./call.js";
import type { CliIO } from "./io.js";

/** `smcp tools --help`. */
export const TOOLS_HELP = `usage: smcp tools [--json] [options]

Lists the server's tools with the JSON Schemas of their input and output
(a verified list_tools call).

  --json                 print the whole verified response object

${CONNECTION_HELP}`;

/** `smcp tools`. */
export async function toolsCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    { name: "tools", help: TOOLS_HELP, options: { ...CONNECTION_FLAGS, json: { type: "boolean" } } },
    argv,
    io,
  );
  if (!flags) return 0;
  const response = await clientFromFlags(flags, io).request("list_tools");
  if (flags.boolean("json")) {
    io.out(canonicalize(response));
    return response.ok ? 0 : 1;
  }
  if (!response.ok) {
    io.err(`error: ${response.error}`);
    return 1;
  }
  const tools = Array.isArray(response.result?.tools) ? response.result.tools : [];
  for (const tool of tools) {
    const t = tool as { name?: unknown; kind?: unknown; description?: unknown; input_schema?: unknown; output_schema?: unknown };
    io.out(`${String(t.name)} (${String(t.kind)}): ${String(t.description)}`);
    io.out(`  input:  ${canonicalize(t.input_schema ?? null)}`);
    io.out(`  output: ${canonicalize(t.output_schema ?? null)}`);
  }
  return 0;
}
