import { createHmac, timingSafeEqual } from "node:crypto";
import { canonicalize, joinCanonicalObject, quoteString } from "./canonical.js";
import type { Key } from "./keyring.js";

const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;

/** True when `signature` is exactly 64 lowercase hex digits (checked before any compare). */
export function isSignatureFormat(signature: unknown): signature is string {
  return typeof signature === "string" && SIGNATURE_FORMAT.test(signature);
}

/** Raw HMAC-SHA256 of canonical text. Canonical text is pure ASCII, so latin1 = UTF-8 here. */
function hmac(key: Key, canonical: string): Buffer {
  return createHmac("sha256", key.bytes).update(canonical, "latin1").digest();
}

/** Lowercase hex HMAC-SHA256 of canonical text (SPEC §3). */
export function signCanonical(key: Key, canonical: string): string {
  return hmac(key, canonical).toString("hex");
}

/**
 * Verifies `signature` over `canonical` against each key (rotation), in
 * constant time per key. Returns the key that matched, or undefined.
 */
export function verifyCanonical(keys: readonly Key[], canonical: string, signature: string): Key | undefined {
  if (!isSignatureFormat(signature)) return undefined;
  const given = Buffer.from(signature, "hex");
  let matched: Key | undefined;
  // Every key is tried even after a match, so timing does not tell which one matched.
  for (const key of keys) {
    if (timingSafeEqual(hmac(key, canonical), given) && matched === undefined) matched = key;
  }
  return matched;
}

/** A signed message: the object, and the canonical bytes that are sent as its body. */
export interface SignedMessage<T> {
  message: T & { signature: string };
  body: string;
}

/**
 * Signs a message built from JS values: canonicalizes every field once, signs
 * the form without `signature`, and returns the canonical body with it.
 */
export function signMessage<T extends Record<string, unknown>>(fields: T, key: Key): SignedMessage<T> {
  const entries: [string, string][] = [];
  for (const name of Object.keys(fields)) {
    const value = fields[name];
    if (name === "signature" || value === undefined) continue;
    entries.push([name, canonicalize(value)]);
  }
  const signature = signCanonical(key, joinCanonicalObject(entries));
  entries.push(["signature", quoteString(signature)]);
  return { message: { ...fields, signature }, body: joinCanonicalObject(entries) };
}

/** The fields of a response, before signing. */
export interface ResponseFields {
  request_id: string;
  ts_ms: number;
  ok: boolean;
  server_id: string;
  status: string;
  result: unknown;
  error: string | null;
}

/**
 * Signs a response. Its nine keys are fixed, so their canonical order is
 * too (error, ok, request_id, result, server_id, signature, status, ts_ms,
 * v): the text is written in one pass and the signature spliced in, with
 * no sorting. Gives the same bytes as {@link signMessage} (tested).
 */
export function signResponse(fields: ResponseFields, key: Key): SignedMessage<ResponseFields & { v: string }> {
  const head = `{"error":${fields.error === null ? "null" : quoteString(fields.error)},"ok":${fields.ok},"request_id":${quoteString(
    fields.request_id,
  )},"result":${canonicalize(fields.result ?? null)},"server_id":${quoteString(fields.server_id)}`;
  const tail = `"status":${quoteString(fields.status)},"ts_ms":${canonicalize(fields.ts_ms)},"v":"mcp/0.1"}`;
  const signature = signCanonical(key, `${head},${tail}`);
  return { message: { v: "mcp/0.1", ...fields, signature }, body: `${head},"signature":"${signature}",${tail}` };
}
