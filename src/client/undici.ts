import { Agent, errors, request } from "undici";
import { DEFAULT_MAX_RESPONSE_BYTES, type HttpTransportOptions, httpSender } from "./http.js";
import type { Transport } from "./transport.js";

/**
 * What `httpTransport` (from `smcp`) does (endpoint, timeout, answer limit,
 * trace headers, errors), over undici's `request` on an agent of its own:
 * Node only, and about a third of the client CPU per call that fetch costs
 * (BENCHMARKS.md, client side). The agent refuses an answer past
 * `maxResponseBytes` as it arrives, declared or chunked. Unlike fetch it
 * follows no redirect and decompresses nothing (an smcp server sends
 * neither). `close()` closes its connections.
 */
export function undiciTransport(url: string, options: HttpTransportOptions = {}): Transport {
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  // The call's own deadline (timeoutMs) governs, so undici's 300 s head and body timeouts are off; an unbounded
  // answer size is undici's -1.
  const agent = new Agent({
    maxResponseSize: Number.isFinite(maxBytes) ? maxBytes : -1,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  return httpSender(
    url,
    options,
    async (endpoint, body, headers, signal) => {
      try {
        const response = await request(endpoint, { method: "POST", headers, body, signal, dispatcher: agent });
        return { body: new Uint8Array(await response.body.arrayBuffer()), status: response.statusCode };
      } catch (error) {
        // Past the limit, declared or as it arrived: the agent dropped the connection.
        if (error instanceof errors.ResponseExceededMaxSizeError) return { body: "too_large", status: 0 };
        throw error;
      }
    },
    { close: () => agent.close(), deadlineSignal: true },
  );
}
