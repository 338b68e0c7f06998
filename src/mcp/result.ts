import { type CallToolResult, CallToolResultSchema, type Tool as McpTool, ToolSchema } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { isJsonObject } from "../protocol/messages.js";

/**
 * The keyword that marks an smcp output schema as "this result is an MCP
 * CallToolResult" (a tool `smcp serve --mcp-upstream` bridged from an MCP
 * server), so `smcp mcp` hands its content on as it is instead of wrapping it.
 * JSON Schema validators ignore unknown keywords.
 */
export const MCP_RESULT_MARK = "x-smcp-mcp-result";

/** Most tools `smcp mcp` offers; a longer list is cut. */
export const MAX_LISTED_TOOLS = 1000;
const MAX_DESCRIPTION = 16 * 1024;

/** One entry of a `list_tools` answer, as `smcp mcp` reads it. */
export const ListedToolSchema = z.object({
  name: z.string().min(1).max(128),
  description: z.string(),
  kind: z.enum(["sync", "job"]),
  input_schema: z.custom<JsonObject>(isJsonObject),
  output_schema: z.custom<JsonObject>(isJsonObject),
});

/** A `list_tools` entry. */
export type ListedTool = z.infer<typeof ListedToolSchema>;

/** How `smcp mcp` calls a listed tool: its kind, and whether its result is a CallToolResult to pass on. */
export interface ToolTraits {
  kind: "sync" | "job";
  mcpResult: boolean;
}

/**
 * A listed smcp tool as MCP `tools/list` shows it, or undefined when MCP
 * cannot take it (checked with the SDK's own schema, so one odd tool never
 * spoils a host's whole list). The input schema gets `type: "object"` (smcp
 * args are objects; MCP requires it); the output schema is offered when it
 * describes an object and `hostCanCompile` it: for a bridged MCP tool, the
 * upstream's own output schema.
 */
export function mcpTool(listed: ListedTool, hostCanCompile: (schema: JsonObject) => boolean): McpTool | undefined {
  const input = { ...(plainJson(withoutSchemaKey(listed.input_schema)) as JsonObject), type: "object" };
  const candidate = outputSchemaOf(listed);
  // A host's SDK client compiles every output schema it lists, and one it cannot compile fails the whole list.
  const output = candidate && hostCanCompile(candidate) ? candidate : undefined;
  const tool = {
    name: listed.name,
    description: listed.description.slice(0, MAX_DESCRIPTION).toWellFormed(),
    inputSchema: input,
    ...(output ? { outputSchema: output } : {}),
  };
  return ToolSchema.safeParse(tool).success ? (tool as McpTool) : undefined;
}

/** The traits `smcp mcp` keeps for a listed tool. */
export function traitsOf(listed: ListedTool): ToolTraits {
  return { kind: listed.kind, mcpResult: listed.output_schema[MCP_RESULT_MARK] === true };
}

function outputSchemaOf(listed: ListedTool): JsonObject | undefined {
  let schema: unknown = listed.output_schema;
  if (listed.output_schema[MCP_RESULT_MARK] === true) {
    const required = listed.output_schema.required;
    const properties = listed.output_schema.properties;
    // Only when the upstream promised structuredContent (it had an output schema).
    if (!(Array.isArray(required) && required.includes("structuredContent") && isJsonObject(properties))) return undefined;
    schema = properties.structuredContent;
  }
  if (!isJsonObject(schema) || schema.type !== "object") return undefined;
  return plainJson(withoutSchemaKey(schema)) as JsonObject;
}

/**
 * An smcp result as an MCP tool result: `structuredContent` (the object) and
 * a text block with its JSON, so hosts without structured content see it too;
 * a bridged MCP tool's CallToolResult is handed on as it is.
 */
export function mcpResult(result: JsonObject, traits: ToolTraits | undefined): CallToolResult {
  const plain = plainJson(result) as Record<string, unknown>;
  if (traits?.mcpResult) {
    const parsed = CallToolResultSchema.safeParse(plain);
    if (parsed.success && parsed.data.isError !== true) {
      const { content, structuredContent } = parsed.data;
      return structuredContent === undefined ? { content } : { content, structuredContent };
    }
  }
  return { content: [{ type: "text", text: JSON.stringify(plain) }], structuredContent: plain };
}

/** An MCP tool error: `isError` with the text (first line `code: message`). */
export function mcpError(text: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text }] };
}

/**
 * A verified smcp value as MCP's JSON can carry it: an integer beyond 2^53
 * (a `bigint` after the lossless parse) becomes the nearest number, as any
 * JavaScript MCP peer would read it.
 */
export function plainJson(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(plainJson);
  if (isJsonObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(out, key, { value: plainJson(item), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/**
 * Without `$schema`: the SDK's client compiles output schemas with a draft-07
 * ajv that refuses a schema naming a draft it does not know (zod writes 2020-12).
 */
function withoutSchemaKey(schema: JsonObject): JsonObject {
  const { $schema: _dropped, ...rest } = schema;
  return rest;
}
