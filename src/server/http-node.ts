import { createServer as createNodeServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { LinkedList, type ListLinks } from "../util/list.js";
import type { TraceCarrier } from "../util/trace.js";
import type { HandleResult, SmcpServer } from "./core.js";
import {
  bodyDeadlineMs,
  clientAddress,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_MS,
  DEFAULT_MAX_CONNECTIONS,
  declaredLength,
  type HttpOptions,
  type HttpSettings,
  healthBody,
  httpSettings,
  notFoundBody,
  precheck,
  targetPath,
} from "./http-common.js";

/** What a node adapter holds now: for tests, health checks and benchmarks. */
export interface HttpLoad {
  /** Requests admitted and not yet answered: bodies still arriving plus requests being handled. */
  inFlight: number;
  /** Of those, requests whose body is still arriving. */
  pendingBodies: number;
}

/** A node:http request listener for smcp; `handleContinue` serves `checkContinue` (Expect: 100-continue). */
export interface NodeHttpHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** For `server.on("checkContinue", …)`: decides before `100 Continue` is sent, so a refused body is never sent. */
  handleContinue(req: IncomingMessage, res: ServerResponse): void;
  /** The requests this handler holds now. */
  load(): HttpLoad;
}

const AT_CAPACITY = "the server is at capacity; retry shortly";
// How long a source over its share of unfinished bodies is told to wait: about the time its own bodies take.
const PENDING_RETRY_MS = 1000;

/**
 * A node:http request listener: `POST {path}` runs the protocol, `GET
 * /healthz` answers without auth. Mount it in any node:http stack; register
 * `handleContinue` for `checkContinue` too, as {@link serveHttp} does.
 *
 * Capacity is split so unauthenticated slow senders cannot starve everyone
 * else: a request whose body is still arriving after the read that brought
 * its head is "pending", and pending requests may hold at most half of
 * `maxInFlight` and at most `maxPendingPerAddress` per source address, and
 * must keep to `minBodyRate`. Requests whose body came whole always find
 * room in the other half.
 */
export function createHttpHandler(server: SmcpServer, options: HttpOptions = {}): NodeHttpHandler {
  const settings = httpSettings(options, "/mcp");
  const deadlines = new BodyDeadlines(settings);
  // Requests whose body has arrived (being handled), and requests whose body is still arriving.
  let handling = 0;
  let pending = 0;
  const pendingByAddress = new Map<string, number>();
  // Requests are classified once the read that brought their head is fully parsed (node parses the
  // body bytes of that read right after emitting "request"): one setImmediate for all of them.
  let toClassify: (() => void)[] = [];
  const classifyLater = (classify: () => void) => {
    toClassify.push(classify);
    if (toClassify.length === 1) {
      setImmediate(() => {
        const batch = toClassify;
        toClassify = [];
        for (const run of batch) run();
      });
    }
  };

  const admit = (req: IncomingMessage, res: ServerResponse, awaitingContinue: boolean) => {
    // The source's key is worked out only for a body still arriving (the rare case that is counted per source);
    // the peer is read now, while the socket is surely open.
    const peer = req.socket.remoteAddress;
    let address = "";
    let state: "new" | "pending" | "handling" | "done" = "new";
    const unpend = () => {
      pending--;
      const left = (pendingByAddress.get(address) ?? 1) - 1;
      if (left === 0) pendingByAddress.delete(address);
      else pendingByAddress.set(address, left);
    };
    // The body is complete: from here the request holds a slot of its own, not a pending one.
    const arrived = () => {
      if (state === "pending") unpend();
      if (state === "new" || state === "pending") {
        state = "handling";
        handling++;
      }
    };
    // Fails closed: a refused request never reaches `server.handle` (readAndHandle checks headersSent).
    const refuseNow = (result: HandleResult, headers: Record<string, string>) => {
      state = "done";
      refuse(req, res, result.httpStatus, result.body, headers);
    };
    /** False when refused: the source holds its share of unfinished bodies, or all pending slots are taken. */
    const classify = (): boolean => {
      if (state !== "new") return true;
      if (req.complete) {
        arrived();
        return true;
      }
      address = clientAddress(settings, peer, req.headers["x-forwarded-for"]);
      const mine = pendingByAddress.get(address) ?? 0;
      if (mine >= settings.maxPendingPerAddress) {
        refuseNow(
          server.reject("rate_limited", "too many unfinished requests from this address; retry later", {
            reason: "pending_bodies",
            retry_after_ms: PENDING_RETRY_MS,
          }),
          { "retry-after": String(PENDING_RETRY_MS / 1000) },
        );
        return false;
      }
      if (pending >= settings.maxPendingBodies) {
        refuseNow(server.reject("unavailable", AT_CAPACITY), { "retry-after": "1" });
        return false;
      }
      state = "pending";
      pending++;
      pendingByAddress.set(address, mine + 1);
      return true;
    };
    // `on`, not `once`: a response closes once, and `once` would wrap the listener anew for every request.
    res.on("close", () => {
      if (state === "pending") unpend();
      else if (state === "handling") handling--;
      state = "done";
    });
    if (awaitingContinue) {
      // No body byte has been sent yet: it is pending, and decided before the client is told to send it.
      if (!classify()) return;
      res.writeContinue();
    } else {
      classifyLater(classify);
    }
    void readAndHandle(server, req, res, settings, deadlines, arrived);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, awaitingContinue: boolean) => {
    const decision = precheck(
      {
        method: req.method ?? "",
        pathname: targetPath(req.url ?? ""),
        contentType: req.headers["content-type"],
        contentLength: req.headers["content-length"],
        // Requests not yet classified are not counted: they are at most one read old, and counting
        // them would let a burst of unfinished heads refuse a whole request arriving in the same read.
        inFlight: handling + pending,
      },
      settings,
    );
    switch (decision.kind) {
      case "health":
        writeAnswer(res, 200, healthBody(server.healthFacts), { head: req.method === "HEAD" });
        return;
      case "metrics":
        void serveMetrics(settings, res);
        return;
      case "not_found":
        return refuse(req, res, 404, notFoundBody(settings));
      case "refuse": {
        const result = server.reject(decision.code, decision.message);
        return refuse(req, res, result.httpStatus, result.body, decision.headers);
      }
      case "read":
        admit(req, res, awaitingContinue);
    }
  };
  const listener = ((req, res) => handle(req, res, false)) as NodeHttpHandler;
  listener.handleContinue = (req, res) => handle(req, res, true);
  listener.load = () => ({ inFlight: handling + pending, pendingBodies: pending });
  return listener;
}

function readAndHandle(
  server: SmcpServer,
  req: IncomingMessage,
  res: ServerResponse,
  settings: HttpSettings,
  deadlines: BodyDeadlines,
  arrived: () => void,
): void {
  // Callbacks rather than a promise and an async function: one request's path has no await of its own here.
  readBody(req, settings, deadlines, arrived, (body) => {
    // Refused while its body was still arriving (over a pending limit): already answered, never handled.
    if (body === "aborted" || res.headersSent || res.destroyed) return;
    if (body === "too_large") return refuseResult(req, res, server.reject("too_large", "the body exceeds the size limit"));
    if (body === "timeout") return refuseResult(req, res, server.reject("bad_envelope", "the body was not received in time"));
    // handle() never rejects (it answers `internal` instead).
    void server.handle(body, traceHeaders(req.headers.traceparent, req.headers.tracestate)).then((result) => send(res, result));
  });
}

/** The W3C trace headers as a carrier (SPEC §10), or undefined when the request has none (the common case: no allocation). */
function traceHeaders(
  traceparent: string | string[] | undefined,
  tracestate: string | string[] | undefined,
): TraceCarrier | undefined {
  if (typeof traceparent !== "string") return undefined;
  return { traceparent, tracestate: typeof tracestate === "string" ? tracestate : undefined };
}

async function serveMetrics(settings: HttpSettings, res: ServerResponse): Promise<void> {
  const metrics = settings.metrics as NonNullable<HttpSettings["metrics"]>;
  try {
    writeAnswer(res, 200, await metrics.render(), { contentType: metrics.contentType });
  } catch {
    res.writeHead(500, ["content-type", "text/plain"]).end("metrics unavailable\n");
  }
}

function refuseResult(req: IncomingMessage, res: ServerResponse, result: HandleResult): void {
  refuse(req, res, result.httpStatus, result.body);
}

/** Answers and closes the connection: the rest of the body is not read. */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: string,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  writeAnswer(res, status, body, { close: true, extra });
  res.once("finish", () => req.destroy());
}

/**
 * Answers go out together, once per event-loop turn (after the turn's reads are handled): answers written
 * back to back cost the socket writes much less than one at a time between reads (measured on loopback: 25 µs
 * of a 92 µs request in `writev` alone, 9 µs when the answers left in bursts). An answer waits at most for the
 * other requests of its own turn.
 */
let answers: { res: ServerResponse; result: HandleResult }[] = [];

function send(res: ServerResponse, result: HandleResult): void {
  if (answers.length === 0) setImmediate(sendAnswers);
  answers.push({ res, result });
}

function sendAnswers(): void {
  const batch = answers;
  answers = [];
  for (const { res, result } of batch) {
    if (res.headersSent || res.destroyed) continue;
    try {
      writeAnswer(res, result.httpStatus, result.body);
    } catch (error) {
      // One response that cannot be written (a stack that patched it) ends alone; the rest of the turn goes out.
      res.destroy(error as Error);
    }
  }
}

/** The one place the node adapter writes an answer's head and body (JSON, never cached, its exact length). */
function writeAnswer(
  res: ServerResponse,
  status: number,
  body: string,
  options?: { contentType?: string; close?: boolean; head?: boolean; extra?: Record<string, string> },
): void {
  // A flat [name, value, ...] list: the cheapest form for node:http to write.
  const headers = [
    "content-type",
    options?.contentType ?? "application/json",
    "cache-control",
    "no-store",
    "content-length",
    String(Buffer.byteLength(body)),
  ];
  if (options?.close) headers.push("connection", "close");
  if (options?.extra) for (const name in options.extra) headers.push(name, options.extra[name] as string);
  res.writeHead(status, headers);
  res.end(options?.head ? undefined : body);
}

/** A body being read: when it started, what it declared and what has come. */
interface BodyEntry extends ListLinks<BodyEntry> {
  start: number;
  declared: number | undefined;
  received: number;
  expire: () => void;
}

/**
 * Deadlines of the bodies being read, checked by one timer rather than one
 * timer per request (a per-request timer costs measurably at high rates).
 * A body's deadline is the body timeout, or sooner at the minimum rate
 * ({@link bodyDeadlineMs}); a chunked body's grows with what it has sent.
 * Exported for its unit test only (not from an entry point).
 */
export class BodyDeadlines {
  // The bodies still arriving, oldest first: a list through the entries, not a Set gaining and losing one per
  // request (see LinkedList).
  readonly #pending = new LinkedList<BodyEntry>();
  readonly #settings: HttpSettings;
  readonly #every: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: HttpSettings) {
    this.#settings = settings;
    // Often enough that a body below the rate floor is cut near its deadline, not a whole timeout later.
    this.#every = Math.max(10, Math.min(250, settings.bodyTimeoutMs, settings.bodyGraceMs || 250));
  }

  add(declared: number | undefined, expire: () => void): BodyEntry {
    const entry: BodyEntry = {
      start: Date.now(),
      declared,
      received: 0,
      expire,
      prev: undefined,
      next: undefined,
      linked: false,
    };
    this.#pending.push(entry);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), this.#every);
      this.#timer.unref();
    }
    return entry;
  }

  /** The body is done (read whole, refused or gone): its deadline no longer applies. */
  forget(entry: BodyEntry): void {
    this.#pending.remove(entry);
  }

  #sweep(): void {
    const now = Date.now();
    for (let entry = this.#pending.head; entry; ) {
      let next = entry.next;
      if (now - entry.start >= bodyDeadlineMs(this.#settings, entry.declared ?? entry.received)) {
        this.forget(entry);
        entry.expire();
        // An expiry that ended another body (a shared socket's close) may have unlinked the next one: start over
        // (each restart follows an expiry, which removed an entry, so this ends).
        if (next && !next.linked) next = this.#pending.head;
      }
      entry = next;
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * Reads the body (calling `arrived` once it is whole, then `done`), within the size limit and the body's deadline. Plain
 * `on` listeners, removed when it settles: this runs for every request, and `once` wraps each listener anew.
 */
function readBody(
  req: IncomingMessage,
  settings: HttpSettings,
  deadlines: BodyDeadlines,
  arrived: () => void,
  done: (body: Buffer | "too_large" | "timeout" | "aborted") => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const finish = (value: Buffer | "too_large" | "timeout" | "aborted") => {
    if (settled) return;
    settled = true;
    deadlines.forget(tracked);
    req.off("data", onData);
    req.off("end", onEnd);
    req.off("error", onError);
    req.off("close", onClose);
    req.pause();
    done(value);
  };
  const tracked = deadlines.add(declaredLength(req.headers["content-length"]), () => finish("timeout"));
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    tracked.received = size;
    if (size > settings.maxBodyBytes) return finish("too_large");
    chunks.push(chunk);
  };
  const onEnd = () => {
    arrived();
    finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  };
  const onError = () => finish("aborted");
  const onClose = () => finish(req.complete ? Buffer.concat(chunks, size) : "aborted");
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onError);
  req.on("close", onClose);
}

/** Where {@link answerBeforeClientError} keeps a connection's latest response. */
const LATEST = Symbol("smcp.latestResponse");
type OwingSocket = Duplex & { [LATEST]?: ServerResponse | undefined };

// node's own answers to a malformed request, as node writes them (its default `clientError` behaviour).
const CLIENT_ERROR_ANSWERS = new Map([
  ["HPE_HEADER_OVERFLOW", "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"],
  ["ERR_HTTP_REQUEST_TIMEOUT", "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"],
]);

/**
 * A body longer than its Content-Length leaves bytes that node parses as a
 * malformed next request; by default node answers those with a bare 400 and
 * destroys the socket at once, so the signed answer still owed to the
 * complete request before is lost (found by test/fuzz-readers.test.ts). Here
 * that answer goes out first, then the connection closes; any other client
 * error gets node's default answer.
 */
function answerBeforeClientError(http: Server): void {
  // The socket's latest response, on the socket itself (no allocation, no listener per request). It outlives
  // its request only until the next one on the same connection; once finished it is owed nothing.
  http.on("request", (req: IncomingMessage, res: ServerResponse) => {
    (req.socket as OwingSocket)[LATEST] = res;
  });
  http.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    const latest = (socket as OwingSocket)[LATEST];
    (socket as OwingSocket)[LATEST] = undefined;
    // A response already finished or gone is owed nothing: as if there were none.
    const res = latest && !latest.writableFinished && !latest.destroyed ? latest : undefined;
    if (res?.req.complete) {
      res.once("close", () => socket.destroy());
      return;
    }
    if (socket.writable && !res?.headersSent) {
      socket.write(CLIENT_ERROR_ANSWERS.get(error.code ?? "") ?? "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    }
    socket.destroy();
  });
}

/** Options for {@link serveHttp}: the HTTP edge, explicitly configured. */
export interface ServeOptions extends HttpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  /** Idle keep-alive connections are closed after this many ms. Default 5,000. */
  keepAliveTimeoutMs?: number;
  /** The request head must arrive within this many ms (node's `headersTimeout`). Default 10,000. */
  headersTimeoutMs?: number;
  /** The whole request must arrive within this many ms (node's `requestTimeout`, a backstop to `bodyTimeoutMs`). Default 60,000. */
  requestTimeoutMs?: number;
  /** Open connections at most; node refuses more at once (`server.maxConnections`). Default {@link DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
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
  /** The requests it holds now (see {@link HttpLoad}). */
  load(): HttpLoad;
  /**
   * Graceful stop: stop accepting, let in-flight requests finish (up to the
   * grace period), close idle connections, then close the smcp server and its stores.
   */
  close(): Promise<void>;
}

/** Serves an smcp server over HTTP; resolves once it is listening. */
export async function serveHttp(server: SmcpServer, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const handler = createHttpHandler(server, options);
  const headersTimeout = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const http = createNodeServer(
    {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_MS,
      headersTimeout,
      requestTimeout: options.requestTimeoutMs ?? 60_000,
      // node checks both timeouts only this often (default 30 s, so a 10 s head deadline was
      // 30 s in practice; found by test/http-edge.test.ts): check at least every second.
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
    },
    handler,
  );
  http.on("checkContinue", handler.handleContinue);
  answerBeforeClientError(http);
  http.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
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
    load: handler.load,
    close() {
      closing ??= (async () => {
        server.drain(); // held long polls answer now, so in-flight requests end quickly
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
