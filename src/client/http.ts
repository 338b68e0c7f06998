import { EventEmitter } from "node:events";
import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { followAbort } from "../util/abort.js";
import { readLimited } from "../util/stream.js";
import type { Transport } from "./transport.js";

/** Largest answer an HTTP transport reads unless told otherwise: 8 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/** Options for {@link httpTransport}. */
export interface HttpTransportOptions {
  /** Give up on an answer after this many ms. Default 30,000. */
  timeoutMs?: number;
  /** Largest answer read, in bytes. Default 8 MiB. */
  maxResponseBytes?: number;
  /** Extra headers (e.g. for a proxy). The protocol itself needs none. */
  headers?: Record<string, string>;
}

/**
 * POSTs envelopes to an smcp HTTP endpoint. Connections are pooled and kept
 * alive by the runtime's fetch, so it runs wherever fetch does (Node, Bun,
 * Deno, browsers); in Node, `smcp/http`'s `undiciTransport` does the same
 * for about a third of the client CPU per call. The body comes back as raw
 * bytes, so invalid UTF-8 is caught by verification instead of being
 * silently replaced. A URL with no path gets `/mcp`.
 */
export function httpTransport(url: string, options: HttpTransportOptions = {}): Transport {
  return httpSender(url, options, async (endpoint, body, headers, signal, maxBytes) => {
    // Always an AbortSignal here: this sender does not ask for a DeadlineSignal.
    const response = await fetch(endpoint, { method: "POST", headers, body, signal: signal as AbortSignal });
    const answer = (await readWhole(response, maxBytes)) ?? (await readLimited(response.body, maxBytes));
    // readLimited without a timeout ends only in bytes or "too_large".
    return { body: typeof answer === "string" ? "too_large" : answer, status: response.status };
  });
}

/** One POST of a signed body: the answer's bytes (or "too_large" past `maxBytes`) and its HTTP status. */
export type HttpPost<S = AbortSignal> = (
  endpoint: string,
  body: string,
  headers: Record<string, string>,
  signal: S,
  maxBytes: number,
) => Promise<{ body: Uint8Array | "too_large"; status: number }>;

/**
 * A call's deadline as an EventEmitter with `aborted` and `reason`, which
 * undici takes as a signal. Why not an AbortSignal: a listener on one keeps
 * its controller (and what it reaches) alive through every young-generation
 * GC, so each call's request state was promoted and left to full GCs. In a
 * loop of controller, listener and timer that cost 13 µs a call against 4
 * without the listener (25 mark-compacts against none).
 */
export class DeadlineSignal extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  /** Aborts once: sets `reason`, then tells the listeners. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}

/** What {@link httpSender} needs beyond the POST itself. */
export interface SenderExtras {
  /** Closes the transport's connections. */
  close?: () => Promise<void>;
  /**
   * The POST takes a {@link DeadlineSignal} (undici does): a call without a
   * caller's signal then makes no AbortSignal at all. Off, it always gets an AbortSignal.
   */
  deadlineSignal?: boolean;
}

/**
 * What every HTTP transport shares, around the POST itself: the endpoint, a timer per call, the trace
 * headers beside the body (SPEC §10), and the errors a caller sees (`unavailable`, `too_large`).
 */
export function httpSender(
  url: string,
  options: HttpTransportOptions,
  post: HttpPost<AbortSignal | DeadlineSignal>,
  extras: SenderExtras = {},
): Transport {
  const endpoint = endpointUrl(url);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const headers = { ...options.headers, "content-type": "application/json" };
  const transport: Transport = {
    async send(body, sendOptions = {}) {
      // A deadline and a timer of our own, cleared once the answer is read: AbortSignal.timeout() costs a
      // weakly held timer per call, which showed as a sixth of a call's CPU (mostly GC) in a profile. A caller's
      // own signal is followed by a controller that is also the deadline (not AbortSignal.any: on Node 20 it leaves
      // an entry per call on the caller's signal, which may live as long as the app), unlinked once the call is over.
      const light = extras.deadlineSignal === true && !sendOptions.signal;
      const followed = sendOptions.signal ? followAbort(sendOptions.signal) : undefined;
      const deadline = light ? new DeadlineSignal() : (followed?.controller ?? new AbortController());
      const timeout = light ? (deadline as DeadlineSignal) : (deadline as AbortController).signal;
      const timer = setTimeout(
        () => deadline.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
        timeoutMs,
      );
      timer.unref();
      try {
        const trace = sendOptions.trace;
        const sent = trace?.traceparent
          ? { ...headers, traceparent: trace.traceparent, ...(trace.tracestate ? { tracestate: trace.tracestate } : {}) }
          : headers;
        const answer = await post(endpoint, body, sent, timeout, maxBytes);
        if (answer.body === "too_large")
          throw new SmcpError("too_large", `the answer exceeds ${maxBytes} bytes`, { origin: "local" });
        return { body: answer.body, status: answer.status };
      } catch (error) {
        if (error instanceof SmcpError) throw error;
        if (sendOptions.signal?.aborted) throw sendOptions.signal.reason;
        const reason = timeout.aborted ? `no answer within ${timeoutMs} ms` : describeNetworkError(error);
        throw new SmcpError("unavailable", `could not reach ${endpoint}: ${reason}`, { cause: error, origin: "local" });
      } finally {
        clearTimeout(timer);
        followed?.unlink();
      }
    },
  };
  if (extras.close) transport.close = extras.close;
  return transport;
}

/**
 * The answer in one read when its length is declared, within the limit, and not compressed (HTTP framing
 * then bounds it: fetch reads exactly Content-Length bytes); undefined otherwise, for the chunked reader,
 * which stops at the limit. Reading the stream chunk by chunk cost more than the rest of a call.
 */
async function readWhole(response: Response, maxBytes: number): Promise<Uint8Array | undefined> {
  const length = response.headers.get("content-length");
  if (length === null || response.headers.has("content-encoding") || !/^\d{1,10}$/.test(length)) return undefined;
  if (Number(length) > maxBytes) return undefined;
  return new Uint8Array(await response.arrayBuffer());
}

/** Normalises a server URL: `http://host:port` becomes `http://host:port/mcp`. */
export function endpointUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SmcpUsageError(`'${url}' is not a URL; use e.g. http://127.0.0.1:8787/mcp`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new SmcpUsageError(`'${url}' is not an http(s) URL; use e.g. http://127.0.0.1:8787/mcp`);
  }
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = "/mcp";
  return parsed.toString();
}

function describeNetworkError(error: unknown): string {
  // undici.request throws the error itself (a socket's, or undici's UND_ERR_*); fetch wraps the same error (or
  // an AggregateError of one per address) in `cause`: either way the caller sees its code.
  const own = (error as { code?: unknown }).code;
  if (typeof own === "string") return own;
  const cause = (error as { cause?: { code?: unknown; message?: unknown; errors?: { code?: unknown }[] } }).cause;
  const code = cause?.code ?? cause?.errors?.find((e) => typeof e.code === "string")?.code ?? cause?.message;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.message : String(error);
}
