import { createServer as createNodeServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { readLimited } from "../util/stream.js";
import { DEFAULT_MAX_MESSAGE_BYTES, type HandleResult, type SmcpServer } from "./core.js";

/** Options for the HTTP adapters. */
export interface HttpOptions {
  /** Path of the protocol endpoint (node adapter only). Default `/mcp`. */
  path?: string;
  /** Largest body read, in bytes; reading stops past it and the answer is 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** A body not fully received within this many ms is refused (`bad_envelope`). Default 10,000. */
  bodyTimeoutMs?: number;
}

const JSON_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/** True for `application/json`, optionally with `charset=utf-8`; anything else is refused. */
export function isJsonContentType(value: string | null | undefined): boolean {
  return value === "application/json" || (typeof value === "string" && JSON_TYPE.test(value.trim()));
}

const HEALTH_BODY = JSON.stringify({ ok: true, v: PROTOCOL_VERSION });

const RESPONSE_HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

/** A node:http request listener: `POST {path}` runs the protocol, `GET /healthz` answers without auth. */
export function createHttpHandler(
  server: SmcpServer,
  options: HttpOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const path = options.path ?? "/mcp";
  const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 10_000;

  return (req, res) => {
    const url = req.url ?? "/";
    const pathname = url.split("?", 1)[0];
    if (pathname === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(200, { ...RESPONSE_HEADERS, "content-length": Buffer.byteLength(HEALTH_BODY) });
      res.end(req.method === "HEAD" ? undefined : HEALTH_BODY);
      return;
    }
    if (pathname !== path) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found; the protocol endpoint is POST ${path}\n`);
      req.resume();
      return;
    }
    void handlePost(server, req, res, maxBytes, bodyTimeoutMs);
  };
}

async function handlePost(
  server: SmcpServer,
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
  bodyTimeoutMs: number,
) {
  const refuse = (result: HandleResult, extra: Record<string, string> = {}) => {
    send(res, result, { ...extra, connection: "close" });
    // The rest of the body is not read: drop the connection once the answer is out.
    res.once("finish", () => req.destroy());
  };
  if (req.method !== "POST") return refuse(server.reject("bad_envelope", "use POST with a JSON body"), { allow: "POST" });
  if (!isJsonContentType(req.headers["content-type"])) {
    return refuse(server.reject("bad_envelope", "Content-Type must be application/json"));
  }
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (declared > maxBytes) return refuse(server.reject("too_large", `the body exceeds ${maxBytes} bytes`));
  const body = await readBody(req, maxBytes, bodyTimeoutMs);
  if (body === "too_large") return refuse(server.reject("too_large", `the body exceeds ${maxBytes} bytes`));
  if (body === "timeout") return refuse(server.reject("bad_envelope", `the body was not received within ${bodyTimeoutMs} ms`));
  if (body === "aborted") return;
  send(res, await server.handle(body));
}

function send(res: ServerResponse, result: HandleResult, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  // A flat [name, value, ...] list: the cheapest form for node:http to write.
  const headers = [
    "content-type",
    "application/json",
    "cache-control",
    "no-store",
    "content-length",
    String(Buffer.byteLength(result.body)),
  ];
  for (const [name, value] of Object.entries(extra)) headers.push(name, value);
  res.writeHead(result.httpStatus, headers);
  res.end(result.body);
}

function readBody(
  req: IncomingMessage,
  maxBytes: number,
  timeoutMs: number,
): Promise<Buffer | "too_large" | "timeout" | "aborted"> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (value: Buffer | "too_large" | "timeout" | "aborted") => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off("data", onData);
      req.pause();
      resolve(value);
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return finish("too_large");
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => finish(Buffer.concat(chunks, size)));
    req.once("error", () => finish("aborted"));
    req.once("close", () => finish(req.complete ? Buffer.concat(chunks, size) : "aborted"));
  });
}

/**
 * A web-standard handler (`Request` -> `Response`) for Hono, Next.js route
 * handlers, Bun, Deno or any fetch-style framework. `POST` runs the
 * protocol wherever it is mounted; `GET` answers a health check.
 */
export function createFetchHandler(server: SmcpServer, options: HttpOptions = {}): (request: Request) => Promise<Response> {
  const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const toResponse = (result: HandleResult) =>
    new Response(result.body, { status: result.httpStatus, headers: RESPONSE_HEADERS });
  return async (request) => {
    if (request.method === "GET") return new Response(HEALTH_BODY, { status: 200, headers: RESPONSE_HEADERS });
    if (request.method !== "POST") return toResponse(server.reject("bad_envelope", "use POST with a JSON body"));
    if (!isJsonContentType(request.headers.get("content-type"))) {
      return toResponse(server.reject("bad_envelope", "Content-Type must be application/json"));
    }
    if (Number(request.headers.get("content-length") ?? Number.NaN) > maxBytes) {
      return toResponse(server.reject("too_large", `the body exceeds ${maxBytes} bytes`));
    }
    const body = await readLimited(request.body, maxBytes);
    if (body === undefined) return toResponse(server.reject("too_large", `the body exceeds ${maxBytes} bytes`));
    return toResponse(await server.handle(body));
  };
}

/** Options for {@link serveHttp}. */
export interface ServeOptions extends HttpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  /** Idle keep-alive connections are closed after this many ms. Default 30,000. */
  keepAliveTimeoutMs?: number;
  /** In-flight requests get this long to finish on close before connections are cut. Default 10,000. */
  shutdownGraceMs?: number;
}

/** A running HTTP server. */
export interface RunningServer {
  /** `http://HOST:PORT`. */
  readonly origin: string;
  /** The protocol endpoint, `http://HOST:PORT/mcp`. */
  readonly url: string;
  readonly http: Server;
  /**
   * Graceful stop: stop accepting, let in-flight requests finish (up to the
   * grace period), close idle connections, then close the smcp server and its stores.
   */
  close(): Promise<void>;
}

/** Serves an smcp server over HTTP; resolves once it is listening. */
export async function serveHttp(server: SmcpServer, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const http = createNodeServer(createHttpHandler(server, options));
  http.keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
  http.headersTimeout = 10_000;
  http.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 8787, host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const { port } = http.address() as AddressInfo;
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const path = options.path ?? "/mcp";
  let closing: Promise<void> | undefined;
  return {
    origin,
    url: `${origin}${path}`,
    http,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        const grace = setTimeout(() => http.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
        await stopped;
        clearTimeout(grace);
        await server.close();
      })();
      return closing;
    },
  };
}
