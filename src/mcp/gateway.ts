import { createRequire } from "node:module";
import type { CallToolResult, Tool as McpTool, Progress } from "@modelcontextprotocol/sdk/types.js";
import type { Ajv2020, ValidateFunction } from "ajv/dist/2020.js";
import { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { JsonObjectSchema } from "../protocol/messages.js";
import { defineTool, type JobContext, type Tool } from "../tools/define.js";
import { protocolTools } from "../tools/protocol.js";
import { assertSchemaCost } from "../tools/schema-cost.js";
import { SUBSCHEMA, SUBSCHEMA_LIST, SUBSCHEMA_MAP } from "../tools/validate.js";
import { outsideJson, outsideObject } from "./json.js";
import { MCP_RESULT_MARK } from "./result.js";
import { oneLine } from "./text.js";
import { McpUpstream, type McpUpstreamOptions, type UpstreamSpec } from "./upstream.js";

/** Options for {@link mcpUpstreamTools}. */
export interface McpGatewayOptions extends McpUpstreamOptions {
  /** Offer every upstream tool as a job tool (`accepted` + `job_id`; upstream progress becomes the job's progress). */
  jobs?: boolean;
  /** Names of the server's own tools: an upstream tool with one of them refuses to start. The protocol tools are always taken. */
  reservedNames?: Iterable<string>;
  /** Time limit of one call, ms (then it is cancelled upstream). Default 60,000 for sync tools, 3,600,000 for jobs. */
  timeoutMs?: number;
  /** Largest result taken from an upstream, in characters of its JSON; larger is `bad_output`. Default 4 MiB. */
  maxResultChars?: number;
}

/** What {@link mcpUpstreamTools} returns: smcp tools to give `createServer`, and the upstreams behind them. */
export interface McpGateway {
  readonly tools: Tool[];
  readonly upstreams: readonly McpUpstream[];
  /** Closes every upstream (stdio servers are stopped). */
  close(): Promise<void>;
}

// Bounds on what an upstream's tool list may hold (beyond the SDK's own shape check).
const MAX_SCHEMA = { maxDepth: 32, maxChars: 64 * 1024 };
const MAX_DESCRIPTION = 16 * 1024;
const MAX_RESULT_DEPTH = 60; // a result sits two levels into a response, whose nesting a client caps at 64
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const SYNC_TIMEOUT_MS = 60_000;
const JOB_TIMEOUT_MS = 3_600_000;
// The SDK's own request timeout is set past the tool's, so smcp's timeout (with its own error) fires first.
const SDK_TIMEOUT_SLACK_MS = 5_000;

/** The smcp result of a bridged tool: the MCP CallToolResult (`content`, and `structuredContent` when given). */
const McpResultSchema = z.object({ content: z.array(JsonObjectSchema), structuredContent: JsonObjectSchema.optional() });
type McpResult = z.infer<typeof McpResultSchema>;

/**
 * Connects to MCP servers as a client (official SDK) and returns their tools
 * as smcp tools, each under its own name, for `createServer` beside your own:
 * arguments are checked against the upstream's input JSON Schema before
 * anything is forwarded (`bad_args`); the result is the MCP CallToolResult
 * (`content`, `structuredContent`), checked against the upstream's output
 * schema; an upstream `isError` is `tool_failed`. With `jobs`, every tool is a
 * job tool whose progress is the upstream's, and `cancel_job` sends the
 * upstream `notifications/cancelled`. A name offered twice (two upstreams, or
 * an upstream and `reservedNames`) refuses to start, naming both. Each
 * upstream is supervised ({@link McpUpstream}): close them with `close()`.
 */
export async function mcpUpstreamTools(
  specs: UpstreamSpec | readonly UpstreamSpec[],
  options: McpGatewayOptions = {},
): Promise<McpGateway> {
  const list = Array.isArray(specs) ? (specs as readonly UpstreamSpec[]) : [specs as UpstreamSpec];
  if (list.length === 0) throw new SmcpUsageError("mcpUpstreamTools needs at least one upstream");
  const upstreams = list.map((spec, i) => new McpUpstream(spec, options, i + 1));
  const close = async () => {
    await Promise.all(upstreams.map((upstream) => upstream.close()));
  };
  const started = await Promise.allSettled(upstreams.map((upstream) => upstream.start()));
  const failed = started.find((outcome) => outcome.status === "rejected");
  if (failed) {
    await close();
    throw failed.reason;
  }
  try {
    const tools = buildTools(upstreams, started as PromiseFulfilledResult<McpTool[]>[], options);
    return { tools, upstreams, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function buildTools(upstreams: McpUpstream[], listed: PromiseFulfilledResult<McpTool[]>[], options: McpGatewayOptions): Tool[] {
  const owners = new Map<string, string>();
  for (const tool of protocolTools) owners.set(tool.name, "smcp's protocol tools");
  for (const name of options.reservedNames ?? []) owners.set(name, "a local tool");
  const tools: Tool[] = [];
  upstreams.forEach((upstream, i) => {
    for (const mcpTool of listed[i]?.value ?? []) {
      const skip = (why: string) =>
        options.onLog?.(`mcp upstream ${upstream.label}: tool '${oneLine(mcpTool.name, 80)}' left out: ${why}`);
      if (!TOOL_NAME.test(mcpTool.name)) {
        skip("its name is not a valid smcp tool name (1-64 letters, digits, '_', '.', '-')");
        continue;
      }
      const owner = owners.get(mcpTool.name);
      const here = `MCP upstream ${upstream.label}`;
      if (owner !== undefined) {
        throw new SmcpUsageError(
          `tool '${mcpTool.name}' is offered by both ${owner} and ${here}; tool names must be unique (drop one of them)`,
        );
      }
      let tool: Tool;
      try {
        tool = bridgedTool(upstream, mcpTool, options);
      } catch (error) {
        skip(oneLine(error instanceof Error ? error.message : String(error), 300));
        continue;
      }
      owners.set(mcpTool.name, here);
      tools.push(tool);
    }
  });
  return tools;
}

/** One upstream tool as an smcp tool. */
function bridgedTool(upstream: McpUpstream, listed: McpTool, options: McpGatewayOptions): Tool {
  const name = listed.name;
  const input = withoutIds(outsideObject(listed.inputSchema, MAX_SCHEMA, "its input schema"));
  // Before ajv sees it: a small schema whose refs multiply would make every call (anyone's wait) slow.
  assertSchemaCost(input, (why) => new Error(`its input schema is too costly to validate: ${why}`));
  compile(input, "input");
  const output =
    listed.outputSchema === undefined
      ? undefined
      : withoutIds(outsideObject(listed.outputSchema, MAX_SCHEMA, "its output schema"));
  if (output) assertSchemaCost(output, (why) => new Error(`its output schema is too costly to validate: ${why}`));
  const outputCheck = output === undefined ? undefined : compile(output, "output");
  const jobs = options.jobs === true;
  const timeoutMs = options.timeoutMs ?? (jobs ? JOB_TIMEOUT_MS : SYNC_TIMEOUT_MS);
  const limits = { maxDepth: MAX_RESULT_DEPTH, maxChars: options.maxResultChars ?? 4 * 1024 * 1024 };
  const call = async (args: JsonObject, signal: AbortSignal, onProgress?: (progress: Progress) => void) => {
    const result = await upstream.call(name, forwardable(args), {
      signal,
      timeoutMs: timeoutMs + SDK_TIMEOUT_SLACK_MS,
      ...(onProgress ? { onProgress } : {}),
    });
    return smcpResult(result, limits, outputCheck);
  };
  const description = (listed.description ?? listed.title ?? "").toWellFormed().slice(0, MAX_DESCRIPTION).toWellFormed();
  const common = {
    name,
    description,
    input: JsonObjectSchema,
    output: McpResultSchema,
    timeoutMs,
    jsonSchema: { input, output: resultJsonSchema(output) },
  };
  if (!jobs) return defineTool({ ...common, handler: (args, ctx) => call(args, ctx.signal) });
  return defineTool({
    ...common,
    kind: "job",
    handler: async (args, ctx) => {
      const progress = latestProgress(ctx);
      try {
        return await call(args, ctx.signal, (p) => progress.push(p));
      } finally {
        await progress.flush();
      }
    },
  });
}

/** The published output schema: a CallToolResult, marked so `smcp mcp` hands it on as one; `structuredContent` per the upstream. */
function resultJsonSchema(output: JsonObject | undefined): JsonObject {
  const structured = output === undefined ? { type: "object" } : withoutKey(output, "$schema");
  return {
    type: "object",
    [MCP_RESULT_MARK]: true,
    description: "The MCP CallToolResult of the upstream tool.",
    properties: {
      content: { type: "array", items: { type: "object" }, description: "MCP content blocks (text, image, resource...)." },
      structuredContent: structured,
    },
    required: output === undefined ? ["content"] : ["content", "structuredContent"],
  };
}

/** A CallToolResult as an smcp result: bounded, well-formed, checked against the output schema; `isError` is `tool_failed`. */
function smcpResult(
  result: CallToolResult,
  limits: { maxDepth: number; maxChars: number },
  outputCheck: ValidateFunction | undefined,
): McpResult {
  if (result.isError === true) {
    const text = result.content.find((block) => block.type === "text")?.text;
    let details: JsonObject | undefined;
    try {
      details = { content: outsideJson(result.content, { maxDepth: 16, maxChars: 8 * 1024 }) };
    } catch {
      details = undefined; // too large to carry: the message still says what happened
    }
    // SPEC §5: tool_failed carries the tool's own message (bounded, escaped by the core).
    const message = text === undefined || text === "" ? "the MCP tool reported an error" : text;
    throw new SmcpError("tool_failed", message, details ? { details } : {});
  }
  const out = outsideObject(
    result.structuredContent === undefined
      ? { content: result.content }
      : { content: result.content, structuredContent: result.structuredContent },
    limits,
  );
  if (outputCheck) {
    if (out.structuredContent === undefined) {
      throw new SmcpError("bad_output", "the MCP tool has an output schema but returned no structuredContent");
    }
    if (!outputCheck(out.structuredContent)) {
      throw new SmcpError("bad_output", "the MCP tool's structuredContent does not match its output schema");
    }
  }
  return out as McpResult; // its shape is McpResultSchema's by construction, and checked again by invokeTool
}

/**
 * Arguments as MCP can carry them: an integer beyond 2^53 (a `bigint` here)
 * has no exact JSON number in JavaScript, so it is refused rather than rounded (SPEC §3).
 */
function forwardable(args: JsonObject): Record<string, unknown> {
  const check = (value: unknown): void => {
    if (typeof value === "bigint") {
      throw new SmcpError("bad_args", "an integer beyond 2^53 cannot be forwarded to an MCP server exactly", {
        details: { issues: [{ path: [], code: "too_big" }], more: 0 },
      });
    }
    if (typeof value === "object" && value !== null) for (const item of Object.values(value)) check(item);
  };
  check(args);
  return args;
}

/**
 * Job progress from upstream notifications, latest wins: while one write to
 * the job store is under way only the newest report waits, so a chatty
 * upstream costs at most one pending write.
 */
function latestProgress(ctx: JobContext): { push(progress: Progress): void; flush(): Promise<void> } {
  let pending: JsonObject | undefined;
  let running: Promise<void> | undefined;
  const pump = async () => {
    while (pending !== undefined) {
      const next = pending;
      pending = undefined;
      await ctx.progress(next).catch(() => undefined); // a failed progress write does not fail the job
    }
    running = undefined;
  };
  return {
    push(progress) {
      const report: JsonObject = {};
      if (Number.isFinite(progress.progress)) report.done = progress.progress;
      if (progress.total !== undefined && Number.isFinite(progress.total)) report.total = progress.total;
      if (typeof progress.message === "string") report.message = oneLine(progress.message, 1000);
      pending = report;
      running ??= pump();
    },
    flush: () => running ?? Promise.resolve(),
  };
}

// Made on first use and kept: building an ajv instance compiles its meta-schemas, which is slow.
let ajv: Ajv2020 | undefined;

/**
 * Compiles an upstream schema as the server's own argument check will (the
 * same ajv draft and options), so a schema that would stop the server from
 * starting leaves out its tool instead. The compiled function is kept; the
 * schema is not (ajv would otherwise hold every schema it ever saw).
 */
function compile(schema: JsonObject, which: string): ValidateFunction {
  if (!ajv) {
    const { Ajv2020: Ajv } = createRequire(import.meta.url)("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js");
    // inlineRefs off: inlining copies a referenced schema's code at every $ref (a 13 KB schema made 22 MB of code).
    ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false, inlineRefs: false });
  }
  const bare = withoutKey(schema, "$schema");
  try {
    return ajv.compile(bare);
  } catch (error) {
    throw new Error(`its ${which} schema cannot be compiled: ${(error as Error).message}`);
  } finally {
    ajv.removeSchema(bare);
  }
}

/**
 * The schema without `$id` keywords. ajv registers every `$id` it compiles and
 * refuses to see one twice, and the same upstream schema is compiled more than
 * once (here, by the server's argument check, by a second server in the same
 * process): with its ids it could stop a server from starting. Only keyword
 * positions are touched: a property or a `default` value named `$id` stays.
 */
function withoutIds(schema: JsonObject): JsonObject {
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node) || typeof node !== "object" || node === null) return node;
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node as JsonObject)) {
      if (key === "$id" && typeof value === "string") continue;
      let copy: unknown = value;
      // Also draft-07's `additionalItems` and tuple `items: [...]`: upstream schemas are often draft-07.
      if ((SUBSCHEMA_LIST.has(key) || key === "items") && Array.isArray(value)) copy = value.map(visit);
      else if (SUBSCHEMA.has(key) || key === "additionalItems") copy = visit(value);
      else if (SUBSCHEMA_MAP.has(key) && typeof value === "object" && value !== null && !Array.isArray(value)) {
        const map: JsonObject = {};
        for (const [name, sub] of Object.entries(value)) define(map, name, visit(sub));
        copy = map;
      }
      define(out, key, copy);
    }
    return out;
  };
  return visit(schema) as JsonObject;
}

/** Sets an own data property, `__proto__` included. */
function define(object: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

function withoutKey(object: JsonObject, key: string): JsonObject {
  const { [key]: _dropped, ...rest } = object;
  return rest;
}
