import { raceAbort } from "../util/abort.js";
import type { TraceCarrier } from "../util/trace.js";

export type { TraceCarrier } from "../util/trace.js";

/** What a transport got back: the body as received, and the HTTP status if any. */
export interface TransportAnswer {
  body: string | Uint8Array;
  status?: number;
}

/** Carries a signed request body to a server and brings back its answer, unverified. */
export interface Transport {
  /**
   * `trace`: the W3C trace context of the call (SPEC §10), sent beside the body (HTTP: the
   * `traceparent`/`tracestate` headers), never inside the signed envelope.
   */
  send(body: string, options?: { signal?: AbortSignal; trace?: TraceCarrier }): Promise<TransportAnswer>;
  close?(): Promise<void>;
}

/**
 * A transport that calls a server in the same process (tests, embedding).
 * An aborted signal stops the wait for the answer (the server still finishes its work).
 */
export function inProcessTransport(server: {
  handle(body: string, trace?: TraceCarrier): Promise<{ body: string; httpStatus: number }>;
}): Transport {
  return {
    async send(body, options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      const handled = server.handle(body, options.trace);
      const result = signal ? await raceAbort(handled, signal) : await handled;
      return { body: result.body, status: result.httpStatus };
    },
  };
}
