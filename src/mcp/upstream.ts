import { basename } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  CallToolResultSchema,
  ErrorCode,
  ListToolsResultSchema,
  McpError,
  type Tool as McpTool,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import { parse as shellParse } from "shell-quote";
import { SmcpError, SmcpUsageError, wireText } from "../protocol/errors.js";
import { ToolTimeout, timedOut } from "../tools/invoke.js";
import { activeCarrier, context, failSpan, trace as otelTrace, SpanKind, type TraceCarrier, tracer } from "../util/trace.js";
import { oneLine, packageVersion } from "./text.js";

/**
 * Where an upstream MCP server is: a command line that starts one on stdio
 * (split as a shell would, without running a shell), an `http(s)://` URL of a
 * Streamable HTTP server, or the same as an object; `connect` makes any SDK
 * transport (in-memory servers, tests).
 */
export type UpstreamSpec =
  | string
  | { command: string; args?: readonly string[]; env?: Record<string, string>; cwd?: string; name?: string }
  | { url: string | URL; headers?: Record<string, string>; name?: string }
  | { connect: () => Transport; name?: string };

/** Options for {@link McpUpstream}. */
export interface McpUpstreamOptions {
  /** Pause before the first restart after the upstream died, ms (doubles each failed try). Default 200. */
  restartDelayMs?: number;
  /** Longest pause between restarts, ms. Default 30,000. */
  maxRestartDelayMs?: number;
  /** Time allowed to start and answer `initialize` and `tools/list`, ms. Default 30,000. */
  startTimeoutMs?: number;
  /** Sees what the upstream writes on stderr, and restarts; one line at a time, control characters removed. */
  onLog?: (line: string) => void;
  /** Called on every change of state (tests, health checks). */
  onState?: (state: UpstreamState) => void;
}

/** Options of one call. */
export interface UpstreamCallOptions {
  /** Aborting it sends the upstream `notifications/cancelled`. */
  signal?: AbortSignal;
  /** Upstream `notifications/progress` for this call. */
  onProgress?: (progress: Progress) => void;
  /** The SDK's own request timeout, ms. */
  timeoutMs: number;
}

/** `starting`: first connection; `up`: connected; `down`: died, a restart is scheduled; `closed`: for good. */
export type UpstreamState = "idle" | "starting" | "up" | "down" | "closed";

const MAX_TOOLS = 1000;
const MAX_PAGES = 100;
const STDERR_TAIL = 8;
// A connection that lived this long was healthy: the next death starts the backoff over.
const STABLE_MS = 10_000;

/**
 * One upstream MCP server, supervised: connected through the official SDK
 * client; when it dies (process exit, lost HTTP session) calls get
 * `unavailable` at once and it is restarted with exponential backoff;
 * {@link close} ends it for good. Its environment is this process's minus
 * `SMCP_*` (the keys stay in smcp).
 */
export class McpUpstream {
  /** A short name for logs and errors: the server's own name once known, never its arguments. */
  label: string;
  readonly #spec: Exclude<UpstreamSpec, string>;
  readonly #options: McpUpstreamOptions;
  #client: Client | undefined;
  #state: UpstreamState = "idle";
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #connectedAt = 0;
  readonly #stderrTail: string[] = [];

  /** `index` numbers it in its default label (`#1 (node)`) until the server tells its own name. */
  constructor(spec: UpstreamSpec, options: McpUpstreamOptions = {}, index = 1) {
    this.#spec = typeof spec === "string" ? parseUpstreamSpec(spec) : spec;
    this.#options = options;
    this.#delay = options.restartDelayMs ?? 200;
    this.label = this.#spec.name ?? defaultLabel(this.#spec, index);
  }

  /** The current state. */
  get state(): UpstreamState {
    return this.#state;
  }

  /** The process id of a stdio upstream while it runs. */
  get pid(): number | null {
    const transport = this.#client?.transport;
    return transport instanceof StdioClientTransport ? transport.pid : null;
  }

  /**
   * Connects and lists the tools (every page). Fails with an
   * {@link SmcpUsageError} naming the upstream when it does not start.
   */
  async start(): Promise<McpTool[]> {
    if (this.#state !== "idle") throw new SmcpUsageError(`MCP upstream ${this.label} was already started`);
    this.#setState("starting");
    try {
      const client = await this.#connect();
      return await this.#listTools(client);
    } catch (error) {
      await this.close();
      throw new SmcpUsageError(`MCP upstream ${this.label} did not start: ${this.#explain(error)}`);
    }
  }

  /**
   * Calls a tool. A dead or closed upstream is `unavailable`; the upstream's
   * own JSON-RPC errors map to `bad_args` (invalid params), `unknown_tool`
   * (method not found) or `tool_failed`. An abort rejects with the signal's reason.
   */
  async call(name: string, args: Record<string, unknown>, options: UpstreamCallOptions): Promise<CallToolResult> {
    // Only an initialized connection: one being made by a restart is not ready for calls.
    const client = this.#state === "up" ? this.#client : undefined;
    if (!client) {
      throw new SmcpError(
        "unavailable",
        this.#state === "closed" ? "the MCP upstream is closed" : "the MCP upstream is down and being restarted; retry",
      );
    }
    try {
      // A CLIENT span per upstream call; its context goes to the upstream in `params._meta` (MCP's carrier).
      return await upstreamSpan(name, (meta) =>
        client.request(
          {
            method: "tools/call",
            params: { name, arguments: args, ...(meta ? { _meta: { ...meta } as Record<string, unknown> } : {}) },
          },
          CallToolResultSchema,
          {
            timeout: options.timeoutMs,
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.onProgress ? { onprogress: options.onProgress } : {}),
          },
        ),
      );
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw this.#callError(error, client, options.timeoutMs);
    }
  }

  /** Closes the connection (a stdio upstream's stdin is closed, then it is signalled) and stops restarting. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#setState("closed");
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.close().catch(() => undefined);
  }

  async #connect(): Promise<Client> {
    const transport = this.#transport();
    const client = new Client({ name: "smcp", version: packageVersion() }, { capabilities: {} });
    client.onerror = (error) => {
      // While starting, a failure is reported once, by start(). A progress notification that arrives
      // just after its call's answer is reported by the SDK as an error; nothing is wrong.
      if (this.#state === "starting" || error.message.startsWith("Received a progress notification for an unknown token")) return;
      this.#log(`error: ${error.message}`);
    };
    client.onclose = () => this.#lost(client);
    this.#client = client;
    try {
      await client.connect(transport, { timeout: this.#options.startTimeoutMs ?? 30_000 });
    } catch (error) {
      if (this.#client === client) this.#client = undefined;
      await client.close().catch(() => undefined);
      throw error;
    }
    if (this.#state === "closed") {
      // close() ran while this connection was being made: it must not outlive it.
      await client.close().catch(() => undefined);
      throw new Error("closed while connecting");
    }
    const name = client.getServerVersion()?.name;
    if (name && !this.#spec.name) this.label = `${this.label.replace(/ \(.*\)$/, "")} (${oneLine(name, 60)})`;
    this.#connectedAt = Date.now();
    this.#setState("up");
    return client;
  }

  async #listTools(client: Client): Promise<McpTool[]> {
    const tools: McpTool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const listed = await client.request(
        { method: "tools/list", params: cursor === undefined ? {} : { cursor } },
        ListToolsResultSchema,
        { timeout: this.#options.startTimeoutMs ?? 30_000 },
      );
      tools.push(...listed.tools);
      if (tools.length > MAX_TOOLS) throw new Error(`it lists more than ${MAX_TOOLS} tools`);
      cursor = listed.nextCursor;
      if (cursor === undefined) return tools;
    }
    throw new Error(`its tool list runs past ${MAX_PAGES} pages`);
  }

  #transport(): Transport {
    const spec = this.#spec;
    if ("connect" in spec) return spec.connect();
    if ("url" in spec) {
      const headers = spec.headers;
      return new StreamableHTTPClientTransport(new URL(spec.url), headers ? { requestInit: { headers } } : {});
    }
    const transport = new StdioClientTransport({
      command: spec.command,
      args: [...(spec.args ?? [])],
      env: { ...inheritedEnv(), ...spec.env },
      stderr: "pipe",
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    });
    const stderr = transport.stderr as Readable | null;
    if (stderr) {
      createInterface({ input: stderr, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
        const clean = oneLine(line, 500);
        this.#stderrTail.push(clean);
        if (this.#stderrTail.length > STDERR_TAIL) this.#stderrTail.shift();
        this.#log(clean);
      });
    }
    return transport;
  }

  /** The connection ended: unless closing, mark down and restart with backoff. */
  #lost(client: Client): void {
    if (this.#client !== client) return; // an older connection, already replaced
    this.#client = undefined;
    if (this.#state !== "up") return; // closing, or a start that failed (its caller reports it)
    if (Date.now() - this.#connectedAt >= STABLE_MS) this.#delay = this.#options.restartDelayMs ?? 200;
    this.#setState("down");
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    const delay = this.#delay;
    this.#delay = Math.min(delay * 2, this.#options.maxRestartDelayMs ?? 30_000);
    this.#log(`connection lost; restarting in ${delay} ms`);
    this.#timer = setTimeout(() => {
      if (this.#state !== "down") return;
      this.#connect().then(
        () => this.#log("restarted"),
        (error: unknown) => {
          if (this.#state !== "down") return;
          this.#log(`restart failed: ${this.#explain(error)}`);
          this.#scheduleRestart();
        },
      );
    }, delay);
    // The timer alone does not keep a process alive (a library user who forgot close() can still exit).
    this.#timer.unref();
  }

  #callError(error: unknown, client: Client, timeoutMs: number | undefined): SmcpError {
    if (error instanceof McpError) {
      // The SDK rejects calls with ConnectionClosed (-32000) when the connection ends, after our
      // onclose dropped the client; an upstream may also answer -32000 itself (JSON-RPC's
      // "server error" range): that is the tool's failure, with its own words.
      const closed = error.code === ErrorCode.ConnectionClosed && (this.#client !== client || this.#state !== "up");
      if (closed) {
        return new SmcpError("unavailable", "the MCP upstream closed the connection; it is being restarted", { cause: error });
      }
      switch (error.code) {
        case ErrorCode.RequestTimeout:
          // What a tool's own timeout gets, for calls and jobs alike.
          return new SmcpError("tool_failed", timedOut(new ToolTimeout(timeoutMs ?? 0)), { cause: error });
        case ErrorCode.InvalidParams:
          return new SmcpError("bad_args", "the MCP upstream refused the arguments", {
            cause: error,
            details: { issues: [], more: 0 },
          });
        case ErrorCode.MethodNotFound:
          return new SmcpError("unknown_tool", "the MCP upstream no longer offers this tool", { cause: error });
        default:
          // The upstream's own message (the SDK prefixes "MCP error CODE: "), bounded: SPEC §5's tool_failed.
          return new SmcpError(
            "tool_failed",
            wireText(error.message.replace(/^MCP error -?\d+: /, "") || "the MCP upstream failed"),
            {
              cause: error,
              details: { upstream_code: error.code },
            },
          );
      }
    }
    if (error instanceof Error && error.name === "ZodError") {
      // The SDK refused the answer's shape: the upstream is up but said something that is not a CallToolResult.
      return new SmcpError("bad_output", "the MCP upstream's answer is not a valid CallToolResult", { cause: error });
    }
    // Not an answer from the upstream (a network failure, a lost HTTP session, a closed pipe): reconnect.
    if (this.#client === client) void client.close().catch(() => undefined);
    return new SmcpError("unavailable", "the MCP upstream cannot be reached; it is being reconnected", { cause: error });
  }

  #explain(error: unknown): string {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") return "command not found";
    const message = oneLine(error instanceof Error ? error.message : String(error), 300);
    const tail = this.#stderrTail.length > 0 ? ` (its stderr: ${this.#stderrTail.join(" | ")})` : "";
    return `${message}${oneLine(tail, 800)}`;
  }

  #setState(state: UpstreamState): void {
    this.#state = state;
    this.#options.onState?.(state);
  }

  #log(line: string): void {
    this.#options.onLog?.(`mcp upstream ${this.label}: ${line}`);
  }
}

/**
 * Reads a `--mcp-upstream` value: an `http(s)://` URL, or a command line split
 * as a shell would (quotes, escapes, `$VAR` from the environment); pipes,
 * redirections, globs and `;` are refused: no shell runs it.
 */
export function parseUpstreamSpec(text: string, env: NodeJS.ProcessEnv = process.env): Exclude<UpstreamSpec, string> {
  const trimmed = text.trim();
  if (/^https?:\/\//i.test(trimmed)) {
    try {
      return { url: new URL(trimmed) };
    } catch {
      throw new SmcpUsageError(`MCP upstream '${redactUrlText(trimmed)}' is not a valid URL`);
    }
  }
  const words: string[] = [];
  for (const entry of shellParse(trimmed, (name) => env[name] ?? "")) {
    if (typeof entry !== "string") {
      throw new SmcpUsageError(
        "an MCP upstream command is run without a shell: no pipes, redirections, globs, ';' or comments (wrap it in a script)",
      );
    }
    words.push(entry);
  }
  const [command, ...args] = words;
  if (command === undefined || command === "")
    throw new SmcpUsageError("an MCP upstream needs a command (e.g. 'npx @modelcontextprotocol/server-everything') or a URL");
  return { command, args };
}

function defaultLabel(spec: Exclude<UpstreamSpec, string>, index: number): string {
  if ("command" in spec) return `#${index} (${oneLine(basename(spec.command), 60)})`;
  if ("url" in spec) return `#${index} (${new URL(spec.url).host})`;
  return `#${index}`;
}

function redactUrlText(text: string): string {
  return oneLine(text.replace(/\/\/[^@/]*@/, "//***@"), 120);
}

/** This process's environment without smcp's own settings (its secrets among them). */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("SMCP_")) env[key] = value;
  }
  return env;
}

/** Runs an upstream `tools/call` in a CLIENT span, giving it the span's trace context for `_meta`. */
async function upstreamSpan<T>(name: string, call: (meta: TraceCarrier | undefined) => Promise<T>): Promise<T> {
  const parent = context.active();
  const span = tracer().startSpan(`tools/call ${name}`, { kind: SpanKind.CLIENT }, parent);
  if (span.isRecording()) {
    span.setAttribute("mcp.method.name", "tools/call");
    span.setAttribute("gen_ai.operation.name", "execute_tool");
    span.setAttribute("gen_ai.tool.name", name);
  }
  const active = otelTrace.setSpan(parent, span);
  try {
    const result = await context.with(active, () => call(activeCarrier(active)));
    if ((result as { isError?: unknown }).isError === true) failSpan(span, "tool_failed");
    return result;
  } catch (error) {
    failSpan(span, error instanceof Error ? error.name : "error");
    throw error;
  } finally {
    span.end();
  }
}
