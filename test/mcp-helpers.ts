import { fileURLToPath } from "node:url";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { UpstreamSpec } from "../src/mcp.js";

/** The reference MCP server (`@modelcontextprotocol/server-everything`), its entry file. */
export const EVERYTHING_JS = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url),
);

/** server-everything on stdio, as an upstream spec. */
export const EVERYTHING: UpstreamSpec = { command: process.execPath, args: [EVERYTHING_JS, "stdio"] };

/** The same as a `--mcp-upstream` command line. */
export const EVERYTHING_CMD = `${process.execPath} ${EVERYTHING_JS} stdio`;

/** What the in-process fixture MCP server saw. */
export interface FixtureEvents {
  /** Calls of `wait-for-cancel` whose request the client cancelled (the handler's signal fired). */
  cancelled: number;
  /** Calls of `wait-for-cancel` that started. */
  waiting: number;
  /** Resolves the next time `wait-for-cancel` sees its cancel. */
  nextCancel: Promise<void>;
}

/**
 * An MCP server made with the SDK's McpServer, in this process (linked
 * in-memory transports), with tools server-everything lacks: `fail` (an
 * `isError` result), `wait-for-cancel` (reports progress once, then waits
 * for its request to be cancelled, and records it).
 */
export function fixtureUpstream(): { spec: UpstreamSpec; events: FixtureEvents } {
  let onCancel: () => void = () => undefined;
  const events: FixtureEvents = {
    cancelled: 0,
    waiting: 0,
    nextCancel: new Promise<void>((resolve) => {
      onCancel = resolve;
    }),
  };
  const connect = (): Transport => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const server = new McpServer({ name: "fixture", version: "1.0.0" });
    server.registerTool(
      "fail",
      { description: "Always reports an error", inputSchema: { why: z.string() } },
      async ({ why }) => ({ isError: true, content: [{ type: "text", text: `failed: ${why}` }] }),
    );
    server.registerTool(
      "wait-for-cancel",
      { description: "Reports progress once, then waits until cancelled", inputSchema: {} },
      async (_args, extra) => {
        events.waiting++;
        const token = extra._meta?.progressToken;
        if (token !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken: token, progress: 1, total: 2, message: "waiting" },
          });
        }
        await new Promise<void>((resolve) => extra.signal.addEventListener("abort", () => resolve(), { once: true }));
        events.cancelled++;
        onCancel();
        events.nextCancel = new Promise<void>((resolve) => {
          onCancel = resolve;
        });
        return { content: [{ type: "text", text: "cancelled" }] };
      },
    );
    void server.connect(serverSide);
    return clientSide;
  };
  return { spec: { connect, name: "fixture" }, events };
}

/**
 * A transport that plays an MCP server from a script: `answer(method, params)`
 * gives each request's `result` (anything, however odd). For generative tests
 * of what smcp does with whatever an upstream says.
 */
export class ScriptedTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  constructor(private readonly answer: (method: string, params: unknown) => unknown) {}

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (!("id" in message) || !("method" in message)) return; // notifications and answers need no reply
    const result =
      message.method === "initialize"
        ? { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "scripted", version: "0" } }
        : this.answer(message.method, message.params);
    // As a real peer would: the answer comes later, as a parsed JSON message.
    setImmediate(() => this.onmessage?.({ jsonrpc: "2.0", id: message.id, result } as JSONRPCMessage));
  }

  async close(): Promise<void> {
    this.onclose?.();
  }
}

/** True while a process with this id exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
