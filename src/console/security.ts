import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** A new console token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Compares a presented token with the console's in constant time. Both are
 * hashed first so the comparison is always of two equal-length digests:
 * neither the token's content nor its length leaks through timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/** Headers on every answer of the console, whatever it is (errors included). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // Scripts and styles only from the console itself (no inline script can run, even if text slipped into the
  // page); it connects only to itself; no plugin, frame, form target or base URL elsewhere.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** Why a request is refused before it is routed: its HTTP status and a one-line reason. */
export interface Refusal {
  status: 401 | 403;
  reason: string;
}

/**
 * Checks a request's Host, Origin, fetch metadata and token, in that order;
 * undefined when it may proceed.
 *
 * - Host must name the console exactly (`127.0.0.1:PORT` or `localhost:PORT`):
 *   a page on another site that rebinds its DNS name to 127.0.0.1 still sends
 *   its own name, so it is refused even though it reached the socket.
 * - Origin, when the browser sends one, must be the console's own (the same
 *   host as in Host): another page's script is refused.
 * - `Sec-Fetch-Site`, when sent, must be `same-origin` or `none` (typed URL).
 * - The token, from `Authorization: Bearer` or else the `token` query
 *   parameter (the event stream and the page itself cannot set headers).
 */
export function refuse(req: IncomingMessage, url: URL, port: number, token: string): Refusal | undefined {
  const host = (req.headers.host ?? "").toLowerCase();
  const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (!allowedHosts.includes(host)) return { status: 403, reason: "wrong Host header: open the URL smcp console printed" };
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return { status: 403, reason: "cross-origin request refused" };
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none")
    return { status: 403, reason: "cross-site request refused" };
  const authorization = req.headers.authorization;
  let presented: string | undefined;
  if (authorization !== undefined) {
    presented = authorization.startsWith("Bearer ") ? authorization.slice(7) : "";
  } else {
    presented = url.searchParams.get("token") ?? undefined;
  }
  if (!tokenMatches(presented, token)) {
    return { status: 401, reason: "missing or wrong token: open the URL smcp console printed (with its ?token=)" };
  }
  return undefined;
}
