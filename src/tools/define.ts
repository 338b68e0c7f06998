import { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { assertSchemaCost } from "./schema-cost.js";

/** What a server says about itself (`server_identity`). */
export interface ServerInfo {
  readonly id: string;
  /** Label of the active signing key; not derived from the secret. */
  readonly fingerprint: string;
  readonly capabilities: JsonObject;
}

/** A client's read/cancel view of its own jobs. */
export interface JobAccess {
  /**
   * The job, if it exists and belongs to the calling client. With `waitMs`,
   * an open job is answered once it ends or its progress changes (past
   * `version`, the one the caller last saw), or when the wait is over (a
   * long poll, SPEC §8).
   */
  get(jobId: string, wait?: { waitMs: number; version?: number | undefined }): Promise<JobView | undefined>;
  /** Cancels the job if it exists, belongs to the caller and has not finished. */
  cancel(jobId: string): Promise<JobView | undefined>;
  /** The caller's jobs, newest first; with `state` or `tool`, only those in that state or of that tool. */
  list(filter?: { state?: JobView["state"]; tool?: string; limit?: number; clientId?: string }): Promise<JobView[]>;
}

/** A job as tools and clients see it. */
export interface JobView {
  readonly id: string;
  readonly tool: string;
  readonly state: "queued" | "running" | "done" | "error" | "cancelled";
  readonly progress: JsonObject | null;
  readonly result: JsonObject | null;
  readonly error: { code: string; message: string; details?: unknown } | null;
  readonly attempts: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Bumped by each change a poll shows (progress, the end); 1 when accepted. */
  readonly version: number;
  /** True for a queued job whose tool no live worker takes now: it waits for one. */
  readonly unserved?: boolean;
  /** Whose job it is: set only in lists for a `jobs:all` caller (SPEC §9). */
  readonly clientId?: string;
}

/** Public description of a tool, as `list_tools` reports it. */
export interface ToolDescription {
  name: string;
  description: string;
  kind: "sync" | "job";
  input_schema: JsonObject;
  output_schema: JsonObject;
}

/** Passed to every handler. */
export interface ToolContext {
  readonly clientId: string;
  readonly requestId: string;
  readonly server: ServerInfo;
  /** Fires when the call is cancelled or times out, or the server shuts down. */
  readonly signal: AbortSignal;
  /** The calling client's jobs. */
  readonly jobs: JobAccess;
  /** Every tool this server offers. */
  readonly tools: () => ToolDescription[];
}

/** Passed to job handlers. */
export interface JobContext extends ToolContext {
  readonly jobId: string;
  /** 1 on the first run; higher when a job is retried after a worker died. */
  readonly attempt: number;
  /** Publishes progress, visible to `poll_job` from any replica. */
  progress(progress: JsonObject): Promise<void>;
}

/** A value, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

interface ToolFields<I extends z.ZodType, O extends z.ZodType> {
  /** Unique name: letters, digits, `_`, `.`, `-`; at most 64 characters. */
  name: string;
  description: string;
  /** Schema of `args`; make it strict (`z.strictObject`) to refuse unknown keys. */
  input: I;
  /** Schema of the result object. */
  output: O;
  /** Abort the handler after this long; a job then ends in `error`/`timeout`. */
  timeoutMs?: number;
  /**
   * JSON Schemas given as they are, for a tool whose contract is JSON Schema
   * rather than zod (a tool bridged from an MCP server). `input` is then
   * published by `list_tools` and enforced (compiled once with ajv) before the
   * handler runs; `output` is published. The zod schemas still run after it.
   */
  jsonSchema?: { input?: JsonObject; output?: JsonObject };
}

/** A synchronous tool: answers `status: "ok"` with its result. */
export interface SyncToolDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> extends ToolFields<I, O> {
  kind?: "sync";
  // Method syntax on purpose: it keeps a specific tool assignable to `Tool` (bivariant args).
  handler(args: z.output<I>, ctx: ToolContext): Awaitable<z.input<O> | StatusReply>;
}

/** A job tool: answers `accepted` with a `job_id` at once; the handler runs in the background. */
export interface JobToolDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> extends ToolFields<I, O> {
  kind: "job";
  /** Runs a job whose worker died again, up to this many attempts in all. Default 3. */
  maxAttempts?: number;
  handler(args: z.output<I>, ctx: JobContext): Awaitable<z.input<O>>;
}

/** A defined tool. */
export type Tool<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> =
  | (Readonly<SyncToolDefinition<I, O>> & { readonly kind: "sync" })
  | (Readonly<JobToolDefinition<I, O>> & { readonly kind: "job" });

/** A sync tool. */
export type SyncTool = Extract<Tool, { kind: "sync" }>;
/** A job tool. */
export type JobTool = Extract<Tool, { kind: "job" }>;

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
// A brand rather than class identity: a tool module may load its own copy of smcp.
const SMCP_TOOL = Symbol.for("smcp.tool");

/** True for a value {@link defineTool} made (from any copy of smcp). */
export function isTool(value: unknown): value is Tool {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[SMCP_TOOL] === true;
}

/** Defines a tool from zod schemas and a handler (sync by default, `kind: "job"` for jobs). */
export function defineTool<I extends z.ZodType, O extends z.ZodType>(def: JobToolDefinition<I, O>): Tool<I, O> & { kind: "job" };
export function defineTool<I extends z.ZodType, O extends z.ZodType>(
  def: SyncToolDefinition<I, O>,
): Tool<I, O> & { kind: "sync" };
export function defineTool(def: SyncToolDefinition | JobToolDefinition): Tool {
  if (!TOOL_NAME.test(def.name)) {
    throw new SmcpUsageError(`tool name '${def.name}' is invalid; use 1-64 letters, digits, '_', '.' or '-'`);
  }
  if (def.timeoutMs !== undefined && !(Number.isInteger(def.timeoutMs) && def.timeoutMs > 0)) {
    throw new SmcpUsageError(`tool '${def.name}': timeoutMs must be a positive integer`);
  }
  if (typeof def.handler !== "function") throw new SmcpUsageError(`tool '${def.name}' needs a handler function`);
  // Checked here, at load, so a --tools module's schema that would make every call slow names its tool.
  for (const which of ["input", "output"] as const) {
    const schema = def.jsonSchema?.[which];
    if (schema !== undefined) {
      assertSchemaCost(
        schema,
        (why) => new SmcpUsageError(`tool '${def.name}': its ${which} JSON Schema is too costly to validate: ${why}`),
      );
    }
  }
  return Object.freeze({ ...def, kind: def.kind ?? "sync", [SMCP_TOOL]: true }) as Tool;
}

/** The JSON Schemas of a tool's input and output (for discovery and LLM tool calling). */
export function describeTool(tool: Tool): ToolDescription {
  return {
    name: tool.name,
    description: tool.description,
    kind: tool.kind,
    input_schema: tool.jsonSchema?.input ?? (z.toJSONSchema(tool.input, { io: "input", unrepresentable: "any" }) as JsonObject),
    output_schema:
      tool.jsonSchema?.output ?? (z.toJSONSchema(tool.output, { io: "output", unrepresentable: "any" }) as JsonObject),
  };
}

/**
 * A sync handler's answer with a status other than `ok` (how `poll_job`
 * reports a job's state). Only the server's own tools use it.
 */
export class StatusReply {
  constructor(
    readonly status: "running" | "done" | "error" | "ok",
    readonly result: JsonObject | null,
    readonly error: { code: string; message: string; details?: unknown } | null = null,
  ) {}
}
