/**
 * HTTP over a raw socket, for requests no HTTP client would send: bodies
 * cut short, lying Content-Length, slow heads, `Expect: 100-continue`.
 * Responses are read back as they arrive and split into messages.
 */
import { connect, type Socket } from "node:net";

/** One HTTP response read off the wire. */
export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** A raw connection: write bytes, read every response (and interim `100 Continue`) that comes back. */
export class RawConnection {
  readonly socket: Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  #waiters: (() => void)[] = [];
  readonly opened: Promise<void>;

  /** `localAddress`: the source address to connect from (127.0.0.2, 127.0.0.3 … are distinct sources on Linux). */
  constructor(origin: string, options: { localAddress?: string } = {}) {
    const url = new URL(origin);
    this.socket = connect({ port: Number(url.port), host: url.hostname, ...options });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("connect", () => resolve());
      this.socket.once("error", reject);
    });
    this.socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#wake();
    });
    this.socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    this.socket.on("error", () => undefined);
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Every byte received so far. */
  get received(): Buffer {
    return this.#data;
  }

  /** True once the peer closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes bytes (a string is latin1-encoded, byte for byte). */
  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, () => resolve());
    });
  }

  /** Resolves when `check` holds on what was received, or rejects after `timeoutMs`. */
  async until<T>(check: (data: Buffer, closed: boolean) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check(this.#data, this.#closed);
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) {
        const last = check(this.#data, this.#closed);
        if (last !== undefined) return last;
        throw new Error(
          `${what}: ${this.#closed ? "connection closed" : `nothing after ${timeoutMs} ms`}; got ${JSON.stringify(this.#data.toString("latin1").slice(0, 300))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The `index`-th final response (interim 1xx responses skipped), once complete. */
  response(index: number, timeoutMs: number): Promise<RawResponse> {
    return this.until((data) => parseResponses(data).final[index], timeoutMs, `response ${index}`);
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }
}

/** Splits received bytes into complete responses: interim (1xx) and final ones. Bodies by Content-Length. */
export function parseResponses(data: Buffer): { interim: number[]; final: RawResponse[] } {
  const interim: number[] = [];
  const final: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end === -1) break;
    const head = data.subarray(at, end).toString("latin1").split("\r\n");
    const status = Number((head[0] ?? "").split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      interim.push(status);
      at = bodyStart;
      continue;
    }
    const length = Number(headers.get("content-length") ?? 0);
    if (data.length < bodyStart + length) break;
    final.push({ status, headers, body: data.subarray(bodyStart, bodyStart + length) });
    at = bodyStart + length;
  }
  return { interim, final };
}

/** A request head for `POST path` with the given headers (Content-Type JSON unless given). */
export function postHead(path: string, headers: Record<string, string | number> = {}): string {
  const all: Record<string, string | number> = { host: "localhost", "content-type": "application/json", ...headers };
  return `POST ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\r\n")}\r\n\r\n`;
}
