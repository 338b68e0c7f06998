import { canonicalize } from "../protocol/canonical.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, talk } from "./connect.js";
import type { CliIO } from "./io.js";
import { oneLine, report } from "./output.js";

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
  const connection = connect(flags, io);
  return talk(connection, io, async (client) => {
    const response = await client.request("list_tools");
    if (flags.boolean("json")) {
      io.out(connection.lastAnswer());
      return response.ok ? 0 : 1;
    }
    if (!response.ok) return report(response, io, false);
    const tools = Array.isArray(response.result?.tools) ? response.result.tools : [];
    for (const tool of tools) {
      const t = tool as {
        name?: unknown;
        kind?: unknown;
        description?: unknown;
        input_schema?: unknown;
        output_schema?: unknown;
      };
      io.out(`${oneLine(String(t.name), 64)} (${oneLine(String(t.kind), 8)}): ${oneLine(String(t.description), 300)}`);
      io.out(`  input:  ${canonicalize(t.input_schema ?? null)}`);
      io.out(`  output: ${canonicalize(t.output_schema ?? null)}`);
    }
    return 0;
  });
}
