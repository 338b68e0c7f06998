import type { SmcpServer } from "../server/core.js";

/** What a transport got back: the body as received, and the HTTP status if any. */
export interface TransportAnswer {
  body: string | Uint8Array;
  status?: number;
}

/** Carries a signed request body to a server and brings back its answer, unverified. */
export interface Transport {
  send(body: string, options?: { signal?: AbortSignal }): Promise<TransportAnswer>;
  close?(): Promise<void>;
}

/** A transport that calls a server in the same process (tests, embedding). */
export function inProcessTransport(server: Pick<SmcpServer, "handle">): Transport {
  return {
    async send(body) {
      const result = await server.handle(body);
      return { body: result.body, status: result.httpStatus };
    },
  };
}
