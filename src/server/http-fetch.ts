import { readLimited } from "../util/stream.js";
import type { HandleResult, SmcpServer } from "./core.js";
import {
  bodyDeadlineMs,
  declaredLength,
  type HttpOptions,
  healthBody,
  httpSettings,
  notFoundBody,
  precheck,
  targetPath,
} from "./http-common.js";

const HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

/**
 * A web-standard handler (`Request` -> `Response`) for Hono, Next.js route
 * handlers, Bun, Deno or any fetch-style framework. Mounted as a route it
 * answers `POST` on whatever path it is given (pass `path` to pin one) and
 * `GET /healthz`; it runs the same pre-check as the node adapter (method,
 * content type, declared length, load) and bounds the body in size and time:
 * a body with a Content-Length must arrive at `minBodyRate` (after
 * `bodyGraceMs`), any body within `bodyTimeoutMs`. The per-address and
 * pending-body limits are the node adapter's (a `Request` carries no peer
 * address): in front of this handler, the hosting server or proxy bounds them.
 */
export function createFetchHandler(server: SmcpServer, options: HttpOptions = {}): (request: Request) => Promise<Response> {
  const settings = httpSettings(options, undefined);
  let inFlight = 0;
  const toResponse = (result: HandleResult, extra: Record<string, string> = {}) =>
    new Response(result.body, { status: result.httpStatus, headers: { ...HEADERS, ...extra } });
  return async (request) => {
    const decision = precheck(
      {
        method: request.method,
        pathname: targetPath(request.url),
        contentType: request.headers.get("content-type"),
        contentLength: request.headers.get("content-length"),
        inFlight,
      },
      settings,
    );
    switch (decision.kind) {
      case "health":
        return new Response(request.method === "HEAD" ? null : healthBody(server.healthFacts), { status: 200, headers: HEADERS });
      case "metrics": {
        const metrics = settings.metrics as NonNullable<typeof settings.metrics>;
        const text = await metrics.render();
        return new Response(text, { status: 200, headers: { "content-type": metrics.contentType, "cache-control": "no-store" } });
      }
      case "not_found":
        return new Response(notFoundBody(settings), { status: 404, headers: HEADERS });
      case "refuse":
        return toResponse(server.reject(decision.code, decision.message), decision.headers);
      case "read":
        break;
    }
    inFlight++;
    try {
      let body: Awaited<ReturnType<typeof readLimited>>;
      try {
        // A chunked body has no length to derive a rate deadline from: the body timeout bounds it.
        const length = declaredLength(request.headers.get("content-length"));
        const deadline = length === undefined ? settings.bodyTimeoutMs : bodyDeadlineMs(settings, length);
        body = await readLimited(request.body, settings.maxBodyBytes, deadline);
      } catch {
        // The body stream failed (the peer went away mid-body): still a signed answer, never a rejection.
        return toResponse(server.reject("bad_envelope", "the body could not be read"));
      }
      if (body === "too_large") return toResponse(server.reject("too_large", "the body exceeds the size limit"));
      if (body === "timeout") return toResponse(server.reject("bad_envelope", "the body was not received in time"));
      const traceparent = request.headers.get("traceparent");
      const carrier =
        traceparent === null ? undefined : { traceparent, tracestate: request.headers.get("tracestate") ?? undefined };
      return toResponse(await server.handle(body, carrier));
    } finally {
      inFlight--;
    }
  };
}
