import type { ErrorCode } from "../protocol/errors.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./core.js";

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
  /** Requests being read or handled at once; past it a request gets a signed `unavailable` (503) at once. Default 4,096. */
  maxInFlight?: number;
  /** Prometheus metrics to serve at `GET /metrics` (`createObservability({ metrics: true }).metrics`). Off when absent. */
  metrics?: MetricsEndpoint | undefined;
}

/** {@link HttpOptions} with every default filled in. */
export interface HttpSettings {
  path: string | undefined;
  healthPath: string;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  maxInFlight: number;
  metrics: MetricsEndpoint | undefined;
}

/** Fills in the defaults; `defaultPath` is the adapter's own (`/mcp` for node, none for fetch). */
export function httpSettings(options: HttpOptions, defaultPath: string | undefined): HttpSettings {
  return {
    path: options.path ?? defaultPath,
    healthPath: options.healthPath ?? "/healthz",
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    bodyTimeoutMs: options.bodyTimeoutMs ?? 10_000,
    maxInFlight: options.maxInFlight ?? 4096,
    metrics: options.metrics,
  };
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
  return { kind: "read" };
}

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

/** The body of a 404: where the endpoint is. Not a protocol message (no protocol endpoint was reached). */
export function notFoundBody(settings: HttpSettings): string {
  return JSON.stringify({
    error: `not_found: the protocol endpoint is POST ${settings.path ?? "(the route this handler is mounted on)"}`,
  });
}
