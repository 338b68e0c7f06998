import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { SmcpUsageError } from "../protocol/errors.js";
import type { JobState } from "./api.js";
import { type ConsoleBackend, type ConsoleEvent, PROTOCOL_TOOL_NAMES } from "./backend.js";
import type { MetricsSampler } from "./metrics.js";
import { newToken, refuse, SECURITY_HEADERS } from "./security.js";

/** Options for {@link startConsole}. */
export interface ConsoleOptions {
  backend: ConsoleBackend;
  metrics: MetricsSampler;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** The token; a fresh random one by default (tests pass none either). */
  token?: string;
  /** Where the built page is (`app.js`, `app.css`); by default beside this module, or in dist/ when run from source. */
  assetsDir?: string;
  /** How often metrics are scraped while a page listens, ms. Default 2,000. */
  metricsIntervalMs?: number;
}

/** A running console. */
export interface RunningConsole {
  /** `http://127.0.0.1:PORT/?token=TOKEN`: the one URL that opens it. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Largest JSON body an action may carry. */
const MAX_BODY_BYTES = 1024 * 1024;
/** Event streams held open at once (each a page or tab). */
const MAX_STREAMS = 32;
const JOB_STATES: ReadonlySet<string> = new Set(["queued", "running", "done", "error", "cancelled"]);

/** The built page's files: `app.js` and `app.css` (esbuild writes them into dist/console/static at build time). */
function loadAssets(dir?: string): { js: Buffer; css: Buffer } {
  const candidates = dir
    ? [dir]
    : [
        fileURLToPath(new URL("./static/", import.meta.url)),
        // Run from source (tsx): the bundle is only ever built into dist/.
        fileURLToPath(new URL("../../dist/console/static/", import.meta.url)),
      ];
  for (const candidate of candidates) {
    if (existsSync(`${candidate}/app.js`)) {
      return { js: readFileSync(`${candidate}/app.js`), css: readFileSync(`${candidate}/app.css`) };
    }
  }
  throw new SmcpUsageError("the console's page is not built: run `npm run build` (it bundles dist/console/static)");
}

/** The page: a shell that loads the bundle. No inline script or style (the CSP forbids them), no secret. */
function page(token: string): string {
  // The token is base64url (no character HTML would read), and is in the page's own URL anyway.
  const q = `?token=${encodeURIComponent(token)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>smcp console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/app.css${q}">
<script type="module" src="/static/app.js${q}"></script>
</head>
<body>
<div id="app"><p class="loading">Loading the console…</p></div>
<noscript>The smcp console needs JavaScript.</noscript>
</body>
</html>
`;
}

/**
 * Serves the console on 127.0.0.1: the page, its bundle, a small JSON API
 * and an event stream, each behind the token, Host and Origin checks
 * ({@link refuse}). Actions are JSON POSTs only, so no form or image on
 * another site can trigger one. The page never sees a key: every call is
 * signed and every answer verified here, by the backend's client.
 */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const { backend, metrics } = options;
  const token = options.token ?? newToken();
  const assets = loadAssets(options.assetsDir);
  const streams = new Set<ServerResponse>();
  let port = 0;

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown) =>
    send(res, status, "application/json; charset=utf-8", JSON.stringify(value));
  const fail = (res: ServerResponse, status: number, message: string) => json(res, status, { error: message });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      // Joined, not resolved: a target like `//other/api/session` stays a path here (it names no route).
      url = new URL(`http://console.invalid${req.url ?? "/"}`);
      if (url.host !== "console.invalid") throw new Error("not a path");
    } catch {
      return fail(res, 400, "bad request target");
    }
    const refusal = refuse(req, url, port, token);
    if (refusal) {
      req.resume();
      return send(res, refusal.status, "text/plain; charset=utf-8", `${refusal.reason}\n`);
    }
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (method === "GET") {
      req.resume();
      if (path === "/") return send(res, 200, "text/html; charset=utf-8", page(token));
      if (path === "/static/app.js") return send(res, 200, "text/javascript; charset=utf-8", assets.js);
      if (path === "/static/app.css") return send(res, 200, "text/css; charset=utf-8", assets.css);
      if (path === "/api/session") return json(res, 200, await backend.session());
      if (path === "/api/tools") return json(res, 200, await backend.tools(true));
      if (path === "/api/metrics") return json(res, 200, metrics.url === null ? metrics.info() : await metrics.sample());
      if (path === "/api/events") return openStream(res);
      if (path === "/api/jobs") {
        const state = url.searchParams.get("state") || undefined;
        const tool = url.searchParams.get("tool") || undefined;
        if (state !== undefined && !JOB_STATES.has(state))
          return fail(res, 400, "state must be one of queued, running, done, error, cancelled");
        if (tool !== undefined && tool.length > 256) return fail(res, 400, "tool is too long");
        const filter = { ...(state === undefined ? {} : { state: state as JobState }), ...(tool === undefined ? {} : { tool }) };
        return json(res, 200, await backend.jobs(filter));
      }
      const jobId = pathParam(/^\/api\/jobs\/([^/]{1,768})$/, path);
      if (jobId !== undefined) return json(res, 200, await backend.job(jobId, url.searchParams.has("refresh")));
      return fail(res, 404, "not found");
    }
    if (method !== "POST") {
      req.resume();
      res.setHeader("allow", "GET, POST");
      return fail(res, 405, "only GET and JSON POST");
    }
    const body = await readJson(req);
    if (typeof body === "string") return fail(res, body === "too large" ? 413 : 415, body);
    if (path === "/api/call") {
      const { tool, args } = body as { tool?: unknown; args?: unknown };
      if (typeof tool !== "string" || tool.length === 0 || tool.length > 256) return fail(res, 400, "tool must be a tool's name");
      if (PROTOCOL_TOOL_NAMES.has(tool)) return fail(res, 400, "the protocol's own tools have their own views here");
      if (args === null || typeof args !== "object" || Array.isArray(args)) return fail(res, 400, "args must be a JSON object");
      return json(res, 200, await backend.call(tool, args as never));
    }
    const cancelId = pathParam(/^\/api\/jobs\/([^/]{1,768})\/cancel$/, path);
    if (cancelId !== undefined) return json(res, 200, await backend.cancel(cancelId));
    return fail(res, 404, "not found");
  };

  /** Server-sent events: job changes (fed by long polls), the history, metrics while someone looks. */
  const openStream = (res: ServerResponse) => {
    if (streams.size >= MAX_STREAMS) return fail(res, 503, "too many open pages");
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
    res.write(": smcp console\n\n");
    streams.add(res);
    const stop = backend.listen((event: ConsoleEvent) =>
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`),
    );
    const end = () => {
      stop();
      streams.delete(res);
    };
    // The response's close, not the request's: a GET's request side closes as soon as it is read.
    res.on("close", end);
    res.on("error", end);
  };

  // Metrics are scraped only while a page is open, and pushed to every open page.
  const interval = options.metricsIntervalMs ?? 2000;
  const sampler =
    metrics.url === null
      ? undefined
      : setInterval(() => {
          if (streams.size === 0) return;
          void metrics.sample().then((info) => {
            for (const res of streams) res.write(`event: metrics\ndata: ${JSON.stringify(info)}\n\n`);
          });
        }, interval);
  sampler?.unref();
  // Comments keep idle streams (and any proxy between) from timing out.
  const keepAlive = setInterval(() => {
    for (const res of streams) res.write(": keep-alive\n\n");
  }, 15_000);
  keepAlive.unref();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A bug here must not take the console down or show a stack: one line, and a 500.
      process.stderr.write(`smcp console: ${error instanceof Error ? error.message : String(error)}\n`);
      if (!res.headersSent) fail(res, 500, "internal error");
      else res.end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    async close() {
      clearInterval(sampler);
      clearInterval(keepAlive);
      backend.close();
      for (const res of streams) res.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The one path parameter a route pattern captures, percent-decoded (at most 256 characters); undefined when it does not match. */
function pathParam(pattern: RegExp, path: string): string | undefined {
  const raw = pattern.exec(path)?.[1];
  if (raw === undefined) return undefined;
  try {
    const decoded = decodeURIComponent(raw);
    return decoded.length > 0 && decoded.length <= 256 ? decoded : undefined;
  } catch {
    return undefined; // a malformed escape: no such route
  }
}

/** An action's body: a JSON object sent as `application/json`, at most 1 MiB; else why not. */
function readJson(req: IncomingMessage): Promise<object | "too large" | "expected a JSON object (application/json)"> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  const refused = "expected a JSON object (application/json)" as const;
  if (type !== "application/json") {
    req.resume();
    return Promise.resolve(refused);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped (not kept), so the answer still reaches the caller.
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("error", () => resolve(refused));
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return resolve("too large");
      try {
        const value: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        resolve(value !== null && typeof value === "object" && !Array.isArray(value) ? value : refused);
      } catch {
        resolve(refused);
      }
    });
  });
}
