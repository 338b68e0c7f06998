import { SmcpUsageError } from "../protocol/errors.js";
import type { Tool } from "../tools/define.js";
import type { Flags } from "./args.js";
import type { CliIO } from "./io.js";

/** `smcp serve`'s MCP flags. */
export const MCP_SERVE_FLAGS = {
  "mcp-upstream": { type: "string", multiple: true },
  "mcp-jobs": { type: "boolean" },
} as const;

/** Help for {@link MCP_SERVE_FLAGS}. */
export const MCP_SERVE_HELP = `MCP servers behind this one (their tools offered under their own names, signed):
  --mcp-upstream CMD|URL an MCP server (repeatable): a command line that starts one on stdio (split
                         like a shell would, run without one; it gets this environment minus SMCP_*),
                         or the http(s):// URL of a Streamable HTTP server. Restarted if it dies.
  --mcp-jobs             offer every upstream tool as a job tool (accepted + job_id; the upstream's
                         progress is the job's; cancel_job cancels the upstream call)`;

/** What `--mcp-upstream` and `--mcp-jobs` asked for. */
export interface McpServeSettings {
  upstreams: string[];
  jobs: boolean;
}

/** Reads the MCP flags of `smcp serve`. */
export function mcpServeSettings(flags: Flags): McpServeSettings {
  const upstreams = flags.list("mcp-upstream");
  const jobs = flags.boolean("mcp-jobs");
  if (jobs && upstreams.length === 0) throw new SmcpUsageError("--mcp-jobs needs at least one --mcp-upstream");
  if (jobs && flags.boolean("no-worker")) {
    throw new SmcpUsageError(
      "--mcp-jobs runs upstream calls as jobs in this process, but --no-worker leaves jobs to `smcp worker`, which has no MCP upstreams: drop one of them",
    );
  }
  return { upstreams, jobs };
}

/**
 * Starts the MCP upstreams (the SDK is loaded only when there are some) and
 * returns their tools; a name already used by `localTools` or another
 * upstream refuses to start, naming both.
 */
export async function startMcpUpstreams(
  settings: McpServeSettings,
  localTools: readonly Tool[],
  io: CliIO,
): Promise<{ tools: Tool[]; close(): Promise<void> }> {
  if (settings.upstreams.length === 0) return { tools: [], close: async () => undefined };
  const [{ mcpUpstreamTools }, { parseUpstreamSpec }] = await Promise.all([
    import("../mcp/gateway.js"),
    import("../mcp/upstream.js"),
  ]);
  const specs = settings.upstreams.map((text) => parseUpstreamSpec(text, io.env));
  const gateway = await mcpUpstreamTools(specs, {
    jobs: settings.jobs,
    reservedNames: localTools.map((tool) => tool.name),
    onLog: (line) => io.err(`smcp: ${line}`),
  });
  const kind = settings.jobs ? "job" : "sync";
  for (const upstream of gateway.upstreams) io.err(`smcp: MCP upstream ${upstream.label} is up`);
  const names = gateway.tools.map((tool) => tool.name);
  const shown = names.length > 20 ? `${names.slice(0, 20).join(", ")}, ...` : names.join(", ");
  io.err(`smcp: ${names.length} ${kind} tool(s) from MCP upstreams: ${shown}`);
  return gateway;
}
