import { isJsonObject } from "../protocol/messages.js";
import { protocolTools } from "../tools/protocol.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, talk } from "./connect.js";
import type { CliIO } from "./io.js";
import { oneLine, report } from "./output.js";

// The protocol's own tools (server_identity, poll_job, ...): listed only with --all.
const PROTOCOL_TOOL_NAMES: ReadonlySet<string> = new Set(protocolTools.map((tool) => tool.name));

/** `smcp tools --help`. */
export const TOOLS_HELP = `usage: smcp tools [--all] [--json] [options]

Lists the tools this client may call (a verified list_tools call): name, kind
(sync or job), arguments and a one-line description.

  --all                  also list the protocol's own tools (poll_job, list_tools, ...)
  --json                 print the whole verified response, JSON Schemas included

${CONNECTION_HELP}`;

/** A listed tool as `smcp tools` reads it. */
interface Listed {
  name?: unknown;
  kind?: unknown;
  description?: unknown;
  input_schema?: unknown;
}

/** `smcp tools`. */
export async function toolsCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "tools",
      help: TOOLS_HELP,
      options: { ...CONNECTION_FLAGS, json: { type: "boolean" }, all: { type: "boolean" } },
    },
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
    const listed = (Array.isArray(response.result?.tools) ? response.result.tools : []) as Listed[];
    const shown = listed.filter((t) => flags.boolean("all") || !PROTOCOL_TOOL_NAMES.has(String(t.name)));
    const rows = shown.map((t) => [
      oneLine(String(t.name), 64),
      oneLine(String(t.kind), 8),
      oneLine(argumentsOf(t.input_schema), 80),
      oneLine(String(t.description ?? "").split("\n")[0] ?? "", 100),
    ]);
    for (const line of table(["TOOL", "KIND", "ARGUMENTS", "DESCRIPTION"], rows)) io.out(line);
    const hidden = listed.length - shown.length;
    if (hidden > 0) io.out(`(${hidden} protocol tools not shown: --all lists them, --json gives every schema)`);
    return 0;
  });
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/** `numbers: number[], note?: string`: an input schema's top-level arguments in one line. */
export function argumentsOf(schema: unknown): string {
  if (!isJsonObject(schema) || !isJsonObject(schema.properties)) return "";
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === "string") : []);
  // Required arguments first: what a caller must give reads before what it may.
  const entries = Object.entries(schema.properties).sort(([a], [b]) => Number(!required.has(a)) - Number(!required.has(b)));
  const parts = entries.map(([name, property]) => `${name}${required.has(name) ? "" : "?"}: ${typeOf(property)}`);
  return parts.length === 0 ? "(none)" : parts.join(", ");
}

function typeOf(schema: unknown, depth = 0): string {
  if (!isJsonObject(schema) || depth > 3) return "any";
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join("|");
  if ("const" in schema) return JSON.stringify(schema.const);
  const type = schema.type;
  if (type === "array") return `${typeOf(schema.items, depth + 1)}[]`;
  if (typeof type === "string") return type;
  if (Array.isArray(type)) return type.join("|");
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) return union.map((s) => typeOf(s, depth + 1)).join("|");
  return "any";
}
