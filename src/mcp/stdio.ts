import type { Readable, Writable } from "node:stream";
import { deserializeMessage, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/** Longest stdin line `smcp mcp` reads from its host: 4 MiB (a line past it is answered with an error and skipped). */
export const MAX_STDIO_LINE_BYTES = 4 * 1024 * 1024;

/** Options for {@link BoundedStdioTransport}. */
export interface BoundedStdioOptions {
  stdin?: Readable;
  stdout?: Writable;
  /** Longest line read. Default {@link MAX_STDIO_LINE_BYTES}. */
  maxLineBytes?: number;
  /** Sees what the host is not told (a skipped line). */
  onLog?: (line: string) => void;
}

/**
 * The MCP stdio transport with bounds that keep the bridge serving its host:
 * a line over `maxLineBytes` is discarded as it streams in (never held in
 * memory) and answered with a JSON-RPC error (`-32600`, id null); a line that
 * is not JSON-RPC gets `-32700`; either way the next line is read as usual.
 * (The SDK's own stdio transport closes the connection when its buffer
 * overflows, which ended the bridge on one long line.)
 */
export class BoundedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  readonly #stdin: Readable;
  readonly #stdout: Writable;
  readonly #max: number;
  readonly #onLog: ((line: string) => void) | undefined;
  #parts: Buffer[] = [];
  #length = 0;
  // True while the rest of an oversized line is being skipped.
  #discarding = false;
  #started = false;

  constructor(options: BoundedStdioOptions = {}) {
    this.#stdin = options.stdin ?? process.stdin;
    this.#stdout = options.stdout ?? process.stdout;
    this.#max = options.maxLineBytes ?? MAX_STDIO_LINE_BYTES;
    this.#onLog = options.onLog;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("BoundedStdioTransport already started");
    this.#started = true;
    this.#stdin.on("data", this.#onData);
    this.#stdin.on("error", this.#onError);
  }

  readonly #onError = (error: Error) => this.onerror?.(error);

  readonly #onData = (chunk: Buffer | string) => {
    let data = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    for (;;) {
      const newline = data.indexOf(0x0a);
      const piece = newline === -1 ? data : data.subarray(0, newline);
      if (!this.#discarding) {
        if (this.#length + piece.length > this.#max) {
          // Past the bound: drop what was held and skip to the end of the line.
          this.#parts = [];
          this.#length = 0;
          this.#discarding = true;
        } else {
          this.#parts.push(piece);
          this.#length += piece.length;
        }
      }
      if (newline === -1) return;
      data = data.subarray(newline + 1);
      if (this.#discarding) {
        this.#discarding = false;
        this.#onLog?.(`skipped a stdin line longer than ${this.#max} bytes`);
        this.#refuse(-32600, `request too large: a line may hold at most ${this.#max} bytes`);
      } else {
        const line = Buffer.concat(this.#parts, this.#length).toString("utf8").replace(/\r$/, "");
        this.#parts = [];
        this.#length = 0;
        if (line.trim() !== "") this.#deliver(line);
      }
    }
  };

  #deliver(line: string): void {
    let message: JSONRPCMessage;
    try {
      message = deserializeMessage(line);
    } catch {
      this.#onLog?.("skipped a stdin line that is not a JSON-RPC message");
      this.#refuse(-32700, "parse error: the line is not a JSON-RPC message");
      return;
    }
    this.onmessage?.(message);
  }

  // Unknowable which request it was (it could not be read), so the id is null, as JSON-RPC says.
  #refuse(code: number, message: string): void {
    void this.send({ jsonrpc: "2.0", id: null, error: { code, message } } as unknown as JSONRPCMessage);
  }

  async close(): Promise<void> {
    this.#stdin.off("data", this.#onData);
    this.#stdin.off("error", this.#onError);
    this.#parts = [];
    this.#length = 0;
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stdout.write(serializeMessage(message))) resolve();
      else this.#stdout.once("drain", resolve);
    });
  }
}
