import { isIP } from "node:net";
import type { JsonObject } from "../protocol/canonical.js";
import type { ErrorCode } from "../protocol/errors.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./core.js";

/** Default open connections at most (`serveHttp`'s `maxConnections`, `smcp serve --max-connections`). */
export const DEFAULT_MAX_CONNECTIONS = 8192;
/** Default time for a request's head to arrive (`headersTimeoutMs`, `--headers-timeout-ms`). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Default idle keep-alive connection lifetime (`keepAliveTimeoutMs`, `--keep-alive-ms`). */
export const DEFAULT_KEEP_ALIVE_MS = 5_000;
/** Default {@link HttpOptions.maxInFlight}. */
export const DEFAULT_MAX_IN_FLIGHT = 4096;
/** Default {@link HttpOptions.bodyTimeoutMs}. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Default {@link HttpOptions.minBodyRate}, bytes per second: 1 KiB/s. */
export const DEFAULT_MIN_BODY_RATE = 1024;
/** Default {@link HttpOptions.bodyGraceMs}. */
export const DEFAULT_BODY_GRACE_MS = 2_000;
/** Default {@link HttpOptions.maxPendingPerAddress}. */
export const DEFAULT_MAX_PENDING_PER_ADDRESS = 64;

/** Prometheus text for `GET /metrics` (see `smcp/observe`). */
export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

/** Options both HTTP adapters take. */
export interface HttpOptions {
  /** Path of the protocol endpoint. Default `/mcp` (the fetch handler: any path, as a mounted route). */
  path?: string;
  /** Path of the unauthenticated health check. Default `/healthz`. */
  healthPath?: string;
  /** Largest body read, in bytes; reading stops past it and the answer is 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** A body not fully received within this many ms is refused (`bad_envelope`). Default 10,000. */
  bodyTimeoutMs?: number;
  /**
   * The slowest a body may arrive, in bytes per second: a body must be complete within
   * `bodyGraceMs + length / minBodyRate` (length: its Content-Length, or for a chunked body the
   * bytes received so far), else it is cut off with a signed `bad_envelope` and the connection
   * closed, well before `bodyTimeoutMs`. 0 turns the floor off. Default 1,024 (1 KiB/s).
   */
  minBodyRate?: number;
  /** The time a body gets on top of what {@link minBodyRate} allows (latency, `100 Continue`). Default 2,000 ms. */
  bodyGraceMs?: number;
  /** Requests being read or handled at once; past it a request gets a signed `unavailable` (503) at once. Default 4,096. */
  maxInFlight?: number;
  /**
   * Node adapter: requests from one address whose body is still arriving, at most; one more is
   * refused at once with a signed `rate_limited` (429) and its connection closed. A body that
   * arrived with its head (in the same read) never counts. Default 64.
   */
  maxPendingPerAddress?: number;
  /**
   * Node adapter: addresses of reverse proxies to believe. A request whose connection comes from
   * one of them is counted under the right-most `X-Forwarded-For` entry (the address that proxy
   * saw), or under the proxy's own address when that entry is absent or not an IP address. Any
   * other connection is counted under its own address, whatever headers it sends. Default none.
   */
  trustProxy?: readonly string[];
  /** Prometheus metrics to serve at `GET /metrics` (`createObservability({ metrics: true }).metrics`). Off when absent. */
  metrics?: MetricsEndpoint | undefined;
}

/** {@link HttpOptions} with every default filled in. */
export interface HttpSettings {
  path: string | undefined;
  healthPath: string;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  minBodyRate: number;
  bodyGraceMs: number;
  maxInFlight: number;
  /** Requests whose body is still arriving, at most: half of `maxInFlight` (at least 1), so bodies that arrived whole always have the rest. */
  maxPendingBodies: number;
  maxPendingPerAddress: number;
  /** {@link HttpOptions.trustProxy}, each address in {@link addressKey}'s form. */
  trustProxy: ReadonlySet<string>;
  metrics: MetricsEndpoint | undefined;
}

/** Fills in the defaults; `defaultPath` is the adapter's own (`/mcp` for node, none for fetch). */
export function httpSettings(options: HttpOptions, defaultPath: string | undefined): HttpSettings {
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const trustProxy = new Set<string>();
  for (const address of options.trustProxy ?? []) {
    // Fail closed: a proxy address that cannot be read would silently trust nothing (or the wrong peer).
    if (isIP(address) === 0) throw new TypeError("trustProxy: each entry must be an IP address");
    trustProxy.add(normalizeAddress(address));
  }
  return {
    path: options.path ?? defaultPath,
    healthPath: options.healthPath ?? "/healthz",
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    minBodyRate: options.minBodyRate ?? DEFAULT_MIN_BODY_RATE,
    bodyGraceMs: options.bodyGraceMs ?? DEFAULT_BODY_GRACE_MS,
    maxInFlight,
    maxPendingBodies: Math.max(1, Math.floor(maxInFlight / 2)),
    maxPendingPerAddress: options.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS,
    trustProxy,
    metrics: options.metrics,
  };
}

/**
 * When a body that has `length` bytes (its Content-Length, or what a chunked body has sent so
 * far) must be complete, in ms after its head: the body timeout, or sooner at the minimum rate.
 */
export function bodyDeadlineMs(settings: HttpSettings, length: number): number {
  if (settings.minBodyRate <= 0) return settings.bodyTimeoutMs;
  return Math.min(settings.bodyTimeoutMs, settings.bodyGraceMs + Math.ceil((length * 1000) / settings.minBodyRate));
}

/** A declared Content-Length as a number, or undefined when absent or unreadable (chunked bodies). */
export function declaredLength(value: string | null | undefined): number | undefined {
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** An address as one spelling: IPv4-mapped IPv6 as IPv4, IPv6 lower-case without a zone. */
function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1] as string;
  const zone = lower.indexOf("%");
  return zone === -1 ? lower : lower.slice(0, zone);
}

/**
 * The key one source is counted under: an IPv4 address as is, an IPv6 address by its /64
 * prefix (one host commonly holds a whole /64, so counting single IPv6 addresses would let it
 * take 2^64 shares).
 */
export function addressKey(address: string): string {
  const plain = normalizeAddress(address);
  if (isIP(plain) !== 6) return plain;
  const [head = "", tail] = plain.split("::");
  const groups = (part: string | undefined) =>
    part ? part.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g.replace(/^0+(?=.)/, "")])) : [];
  const front = groups(head);
  const back = groups(tail);
  const all = tail === undefined ? front : [...front, ...Array(8 - front.length - back.length).fill("0"), ...back];
  return `${all.slice(0, 4).join(":")}::/64`;
}

/**
 * The address a request is counted under: its peer's, or, when the peer is a trusted proxy,
 * the right-most `X-Forwarded-For` entry (the one that proxy added; entries further left were
 * written by whoever connected to it and prove nothing).
 */
export function clientAddress(
  settings: HttpSettings,
  peer: string | undefined,
  forwardedFor: string | string[] | null | undefined,
): string {
  const own = addressKey(peer ?? "");
  if (!settings.trustProxy.has(normalizeAddress(peer ?? "")) || forwardedFor == null) return own;
  const joined = Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor;
  const last = joined.slice(joined.lastIndexOf(",") + 1).trim();
  return isIP(last) === 0 ? own : addressKey(last);
}

/** What an adapter knows of a request before reading its body. */
export interface RequestHead {
  method: string;
  /** The request target's path, or undefined when the target cannot be read. */
  pathname: string | undefined;
  contentType: string | null | undefined;
  contentLength: string | null | undefined;
  /** Requests already in flight in this adapter. */
  inFlight: number;
}

/** What to do with a request, decided from its head alone. */
export type Precheck =
  | { kind: "health" }
  | { kind: "metrics" }
  | { kind: "not_found" }
  | { kind: "refuse"; code: ErrorCode; message: string; headers?: Record<string, string> }
  | { kind: "read" };

const JSON_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/** True for `application/json`, optionally with `charset=utf-8`; anything else is refused. */
export function isJsonContentType(value: string | null | undefined): boolean {
  return value === "application/json" || (typeof value === "string" && JSON_TYPE.test(value.trim()));
}

/** The one pre-check both adapters run: route, method, content type, declared length, load. */
export function precheck(head: RequestHead, settings: HttpSettings): Precheck {
  if (head.pathname === settings.healthPath && (head.method === "GET" || head.method === "HEAD")) return { kind: "health" };
  if (head.pathname === "/metrics" && head.method === "GET" && settings.metrics) return { kind: "metrics" };
  if (head.pathname === undefined || (settings.path !== undefined && head.pathname !== settings.path))
    return { kind: "not_found" };
  if (head.method !== "POST")
    return { kind: "refuse", code: "bad_envelope", message: "use POST with a JSON body", headers: { allow: "POST" } };
  if (!isJsonContentType(head.contentType))
    return { kind: "refuse", code: "bad_envelope", message: "Content-Type must be application/json" };
  if (Number(head.contentLength ?? Number.NaN) > settings.maxBodyBytes) {
    return { kind: "refuse", code: "too_large", message: "the body exceeds the size limit" };
  }
  if (head.inFlight >= settings.maxInFlight) {
    return {
      kind: "refuse",
      code: "unavailable",
      message: "the server is at capacity; retry shortly",
      headers: { "retry-after": "1" },
    };
  }
  return READ;
}

// The common decision, one object for every request.
const READ: Precheck = Object.freeze({ kind: "read" });

/** The path of a request target: origin-form (`/mcp?x`) or absolute-form (`http://host/mcp`, RFC 9112 §3.2.2). */
export function targetPath(target: string): string | undefined {
  if (target.startsWith("/")) {
    const end = target.search(/[?#]/);
    return end === -1 ? target : target.slice(0, end);
  }
  try {
    const url = new URL(target);
    return url.protocol === "http:" || url.protocol === "https:" ? url.pathname : undefined;
  } catch {
    return undefined;
  }
}

/** The body of `GET /healthz`. */
export const HEALTH_BODY = JSON.stringify({ ok: true, v: PROTOCOL_VERSION });

/** The body of `GET /healthz` for a server: with its health facts (the registry's state) when it has any. */
export function healthBody(facts: JsonObject | undefined): string {
  return facts ? JSON.stringify({ ok: true, v: PROTOCOL_VERSION, ...facts }) : HEALTH_BODY;
}

/** The body of a 404: where the endpoint is. Not a protocol message (no protocol endpoint was reached). */
export function notFoundBody(settings: HttpSettings): string {
  return JSON.stringify({
    error: `not_found: the protocol endpoint is POST ${settings.path ?? "(the route this handler is mounted on)"}`,
  });
}
