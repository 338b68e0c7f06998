import { connect } from "node:net";
import { performance } from "node:perf_hooks";

/** One HTTP/1.1 response read off a socket. */
export interface RawResponse {
  status: number;
  /** Header and body bytes. */
  bytes: number;
}

type Body = { kind: "length"; left: number } | { kind: "chunked"; tail: string } | { kind: "close" };

const CHUNKED_END = "\r\n0\r\n\r\n";

/**
 * Splits bytes received on a socket into HTTP/1.1 responses: status line and
 * headers, then a Content-Length body, a chunked body (up to its last, empty
 * chunk; trailers are not expected) or a body up to the close; none for 1xx,
 * 204 and 304. Incremental (a 37 MB answer is counted, not copied). Enough
 * for a bench that writes its own requests byte for byte; not a general client.
 */
export class ResponseParser {
  #head = Buffer.alloc(0);
  #current: { status: number; bytes: number; body: Body } | undefined;

  /** Adds received bytes; returns the responses they completed. */
  push(chunk: Buffer): RawResponse[] {
    const done: RawResponse[] = [];
    let data = chunk;
    for (;;) {
      if (!this.#current) {
        if (data.length === 0) return done;
        const head = Buffer.concat([this.#head, data]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) {
          this.#head = head;
          return done;
        }
        this.#head = Buffer.alloc(0);
        data = head.subarray(end + 4);
        this.#current = { ...parseHead(head.subarray(0, end).toString("latin1")), bytes: end + 4 };
      }
      const current = this.#current;
      const body = current.body;
      let take = data.length;
      let complete = false;
      if (body.kind === "length") {
        take = Math.min(body.left, data.length);
        body.left -= take;
        complete = body.left === 0;
      } else if (body.kind === "chunked") {
        const text = body.tail + data.toString("latin1");
        const at = text.indexOf(CHUNKED_END);
        complete = at >= 0;
        if (complete) take = at + CHUNKED_END.length - body.tail.length;
        else body.tail = text.slice(-(CHUNKED_END.length - 1));
      }
      current.bytes += take;
      data = data.subarray(take);
      if (!complete) return done;
      done.push({ status: current.status, bytes: current.bytes });
      this.#current = undefined;
    }
  }

  /** The connection closed: a body delimited by the close is complete. */
  end(): RawResponse[] {
    const current = this.#current;
    this.#current = undefined;
    return current?.body.kind === "close" ? [{ status: current.status, bytes: current.bytes }] : [];
  }
}

function parseHead(head: string): { status: number; body: Body } {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  if (status < 200 || status === 204 || status === 304) return { status, body: { kind: "length", left: 0 } };
  if (length !== undefined) return { status, body: { kind: "length", left: Number(length) } };
  // The empty body "0\r\n\r\n" ends with CHUNKED_END once a virtual "\r\n" is put before it.
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return { status, body: { kind: "chunked", tail: "\r\n" } };
  return { status, body: { kind: "close" } };
}

/** What {@link exchange} saw. */
export interface Exchange {
  /** Every response, 1xx included, in order. */
  responses: RawResponse[];
  /** All bytes received, decoded as latin1 (to search for a marker). */
  text: string;
  bytes: number;
  /** ms from the first byte written to the last response completed; undefined when none came. */
  answeredMs: number | undefined;
  /** True when the time limit passed before the server closed the connection. */
  timedOut: boolean;
}

/**
 * Writes `request` (exact bytes) on a fresh connection and reads until the
 * server closes it or `timeoutMs` passes, whichever is first. Requests should
 * say `Connection: close`, so the server closes once it has answered.
 */
export function exchange(options: { port: number; host?: string; request: Buffer; timeoutMs: number }): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(options.port, options.host ?? "127.0.0.1");
    const parser = new ResponseParser();
    const chunks: Buffer[] = [];
    const responses: RawResponse[] = [];
    let started = 0;
    let answeredMs: number | undefined;
    let finished = false;
    const finish = (timedOut: boolean) => {
      if (finished) return;
      finished = true;
      const closed = timedOut ? [] : parser.end();
      if (closed.length > 0) {
        responses.push(...closed);
        answeredMs = performance.now() - started;
      }
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks);
      resolve({ responses, text: all.toString("latin1"), bytes: all.length, answeredMs, timedOut });
    };
    const timer = setTimeout(() => finish(true), options.timeoutMs);
    socket.once("connect", () => {
      started = performance.now();
      socket.write(options.request);
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const complete = parser.push(chunk);
      if (complete.length > 0) {
        responses.push(...complete);
        answeredMs = performance.now() - started;
      }
    });
    // A server may close while we still write (a refused body): that is an answer, not a failure.
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}
