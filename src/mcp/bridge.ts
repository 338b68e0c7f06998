import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type Tool as McpTool,
  type ServerNotification,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import { z } from "zod";
import { resultOf, type SmcpClient } from "../client/client.js";
import { detailLines } from "../client/present.js";
import { canonicalize, type JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import { demoTools } from "../tools/demo.js";
import { PLUMBING_TOOLS } from "../tools/protocol.js";
import { context, contextFrom, failSpan, trace as otelTrace, SpanKind, tracer } from "../util/trace.js";
import { ListedToolSchema, MAX_LISTED_TOOLS, mcpError, mcpResult, mcpTool, type ToolTraits, traitsOf } from "./result.js";
import { oneLine, packageVersion } from "./text.js";

/** Options for {@link createMcpBridge}. */
export interface McpBridgeOptions {
  /** The smcp client every call goes through (signed, every answer verified). */
  client: SmcpClient;
  /** The name this MCP server gives in `initialize`. Default `smcp`. */
  name?: string;
  /** Sees what the bridge cannot tell the host (a failed notification, a tool left out of the list). */
  onLog?: (line: string) => void;
  /** Extra lines for an error the host is shown (e.g. a hint naming the setting to fix). */
  hint?: (error: SmcpError) => string | undefined;
  /**
   * Offer the reference tutorial's demo tools (`batch_sum`, `start_long_task`,
   * recognised by name and description) to the model too. Default false: a
   * model is shown the server's real tools only.
   */
  demoTools?: boolean;
  /** How long the remote tool list is reused, ms (a host's `tools/list` within it costs no request). Default 10,000. */
  listTtlMs?: number;
  /** How job waits poll (long-poll where the server offers it). */
  wait?: { pollIntervalMs?: number; maxPollIntervalMs?: number };
}

const ListToolsAnswer = z.object({ tools: z.array(z.unknown()) });

// The demo tools as the server describes them: left out of the host's list unless asked for.
const DEMO = new Map(demoTools.map((tool) => [tool.name, tool.description]));

/** How long the bridge reuses the remote tool list by default, ms. */
export const DEFAULT_LIST_TTL_MS = 10_000;
// A call naming a tool not in the cached list refreshes it, but at most this often.
const UNKNOWN_REFRESH_MS = 1_000;

type Extra = {
  signal: AbortSignal;
  _meta?: { progressToken?: string | number } | undefined;
  sendNotification: (notification: ServerNotification) => Promise<void>;
};

/**
 * An MCP server (official SDK, low-level `Server`) that forwards to a remote
 * smcp server: `tools/list` is the remote `list_tools` (verified) without the
 * plumbing tools; `tools/call` of a sync tool is one signed call, its result
 * `structuredContent` plus a text block of its JSON; a job tool is started
 * and waited for, each progress change a `notifications/progress` when the
 * host sent a progress token, and the host's `notifications/cancelled`
 * cancels the job. Errors are tool errors (`isError`) whose text starts with
 * the smcp code; an answer that fails verification is an error, never a
 * result. Connect it to a transport (`StdioServerTransport`) to serve.
 */
export function createMcpBridge(options: McpBridgeOptions): Server {
  const { client } = options;
  const server = new Server(
    { name: options.name ?? "smcp", version: packageVersion() },
    {
      capabilities: { tools: {} },
      instructions: `Tools of the smcp server '${client.serverId}'; every call is signed and every answer verified.`,
    },
  );
  let traits = new Map<string, ToolTraits>();
  const compiles = hostCompileCheck();
  // The tool list, cached: a host's tools/list within the TTL and calls of known tools cost no request;
  // a call naming a tool not in the list refreshes it at most once a second.
  let cached: { tools: McpTool[]; at: number } | undefined;
  const ttlMs = options.listTtlMs ?? DEFAULT_LIST_TTL_MS;
  const freshList = async (maxAgeMs: number): Promise<McpTool[]> => {
    if (cached && Date.now() - cached.at < maxAgeMs) return cached.tools;
    const tools = await listTools();
    cached = { tools, at: Date.now() };
    return tools;
  };

  const listTools = async (): Promise<McpTool[]> => {
    const answer = ListToolsAnswer.safeParse(await client.call("list_tools", {}));
    if (!answer.success) throw new SmcpError("bad_output", "the server's list_tools answer is not a list of tools");
    const tools: McpTool[] = [];
    const seen = new Map<string, ToolTraits>();
    const hostCanCompile = compiles();
    for (const entry of answer.data.tools.slice(0, MAX_LISTED_TOOLS)) {
      const listed = ListedToolSchema.safeParse(entry);
      if (!listed.success || PLUMBING_TOOLS.has(listed.data.name) || seen.has(listed.data.name)) continue;
      if (!options.demoTools && DEMO.get(listed.data.name) === listed.data.description) continue;
      const tool = mcpTool(listed.data, hostCanCompile);
      if (!tool) {
        options.onLog?.(`tool '${oneLine(listed.data.name, 80)}' left out: MCP cannot take its schemas`);
        continue;
      }
      seen.set(tool.name, traitsOf(listed.data));
      tools.push(tool);
    }
    traits = seen;
    return tools;
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    try {
      return { tools: await freshList(ttlMs) };
    } catch (error) {
      throw new McpError(ErrorCode.InternalError, describe(error, options).join("\n"));
    }
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const name = request.params.name;
    if (PLUMBING_TOOLS.has(name)) return mcpError("unknown_tool: this tool is smcp plumbing, not offered over MCP");
    try {
      // A host may call without listing first: learn the tool's traits once.
      if (!traits.has(name)) await freshList(Math.min(ttlMs, UNKNOWN_REFRESH_MS)).catch(() => undefined);
      const args = (request.params.arguments ?? {}) as JsonObject;
      // The host's trace context (`params._meta.traceparent`, SPEC §10) is the parent of this call's spans.
      const result = await tracedCall(name, request.params._meta, () => callTool(client, name, args, extra as Extra, options));
      return mcpResult(result, traits.get(name));
    } catch (error) {
      return mcpError(describe(error, options).join("\n"));
    }
  });
  return server;
}

const MAX_COMPILE_CACHE = 2000;

/**
 * Whether an MCP host's SDK client can compile an output schema, checked with
 * the SDK's own default validator. Verdicts are cached by the schema's text;
 * each listing gets a fresh validator (ajv keeps every schema it compiled).
 */
function hostCompileCheck(): () => (schema: JsonObject) => boolean {
  const verdicts = new Map<string, boolean>();
  return () => {
    let validator: AjvJsonSchemaValidator | undefined;
    return (schema) => {
      const key = canonicalize(schema);
      let verdict = verdicts.get(key);
      if (verdict === undefined) {
        validator ??= new AjvJsonSchemaValidator();
        try {
          validator.getValidator(schema);
          verdict = true;
        } catch {
          verdict = false;
        }
        if (verdicts.size >= MAX_COMPILE_CACHE) verdicts.clear();
        verdicts.set(key, verdict);
      }
      return verdict;
    };
  };
}

/**
 * The host's call as a SERVER span (`tools/call <tool>`, MCP conventions) under the host's
 * `_meta.traceparent` when it carries a well-formed one; the smcp calls it makes are its children.
 */
async function tracedCall<T>(name: string, meta: unknown, run: () => Promise<T>): Promise<T> {
  const carried = (meta ?? {}) as { traceparent?: unknown; tracestate?: unknown };
  const parent = contextFrom({
    traceparent: typeof carried.traceparent === "string" ? carried.traceparent : undefined,
    tracestate: typeof carried.tracestate === "string" ? carried.tracestate : undefined,
  });
  const span = tracer().startSpan(`tools/call ${name}`, { kind: SpanKind.SERVER }, parent);
  if (span.isRecording()) {
    span.setAttribute("mcp.method.name", "tools/call");
    span.setAttribute("gen_ai.operation.name", "execute_tool");
    span.setAttribute("gen_ai.tool.name", name);
  }
  try {
    return await context.with(otelTrace.setSpan(parent, span), run);
  } catch (error) {
    failSpan(span, error instanceof SmcpError ? error.code : "tool_failed");
    throw error;
  } finally {
    span.end();
  }
}

/**
 * One call: sync tools answer at once; a job is waited for. The start is not
 * tied to the host's signal: once a job is accepted its id is known, so a
 * cancel that came meanwhile still reaches it (waitForJob cancels at once).
 */
async function callTool(
  client: SmcpClient,
  name: string,
  args: JsonObject,
  extra: Extra,
  options: McpBridgeOptions,
): Promise<JsonObject> {
  const started = await client.request(name, args);
  const jobId = started.result?.job_id;
  if (started.status !== "accepted" || typeof jobId !== "string") return resultOf(started);
  const progress = progressSender(extra, options);
  // Just accepted: version 1, so the first long poll waits for anything newer.
  const done = await client.waitForJob(jobId, {
    version: 1,
    ...options.wait,
    signal: extra.signal,
    ...(progress ? { onProgress: progress } : {}),
  });
  return resultOf(done);
}

/**
 * Turns job progress into `notifications/progress` for the host's token: a
 * notification per change; `{done, total}` give progress/total, `{message}`
 * the message; any other shape counts up and is shown as its JSON.
 */
function progressSender(
  extra: Extra,
  options: McpBridgeOptions,
): ((progress: JsonObject | null, state: "queued" | "running") => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let last = "";
  let count = 0;
  return (progress) => {
    if (!progress) return;
    const key = canonicalize(progress);
    if (key === last) return;
    last = key;
    const { done, total, message } = progress;
    count = typeof done === "number" && Number.isFinite(done) ? done : count + 1;
    const params: { progressToken: string | number; progress: number; total?: number; message?: string } = {
      progressToken: token,
      progress: count,
    };
    if (typeof total === "number" && Number.isFinite(total)) params.total = total;
    if (typeof message === "string") params.message = oneLine(message, 1000);
    else if (typeof done !== "number") params.message = oneLine(key, 200);
    extra
      .sendNotification({ method: "notifications/progress", params })
      .catch((error: unknown) => options.onLog?.(`progress notification failed: ${oneLine(String(error), 200)}`));
  };
}

/** The lines an error is shown as: `code: message`, the issues of `bad_args`, a hint. Never a stack. */
function describe(error: unknown, options: McpBridgeOptions): string[] {
  if (!(error instanceof SmcpError)) {
    options.onLog?.(`internal error: ${oneLine(error instanceof Error ? error.message : String(error), 300)}`);
    return ["internal: the bridge failed to handle this call"];
  }
  const lines = [`${error.code}: ${oneLine(error.message, 500)}`, ...detailLines(error.details)];
  const hint = options.hint?.(error);
  if (hint) lines.push(`hint: ${hint}`);
  return lines;
}
