import { createHmac, sign, timingSafeEqual, verify } from "node:crypto";
import { ED25519_TORSION_SUBGROUP, ed25519 } from "@noble/curves/ed25519.js";
import {
  CanonicalValueError,
  canonicalize,
  hasLoneSurrogate,
  type JsonObject,
  joinCanonicalObject,
  quoteString,
} from "./canonical.js";
import { SmcpUsageError } from "./errors.js";
import { type Algorithm, type Ed25519Key, type HmacKey, isVettedEd25519, type Key } from "./keys.js";

const SIGNATURE_FORMAT: Record<Algorithm, RegExp> = { "hmac-sha256": /^[0-9a-f]{64}$/, ed25519: /^[0-9a-f]{128}$/ };

/**
 * True when `signature` has the exact form of `alg`: 64 lowercase hex digits
 * for HMAC-SHA256, 128 for Ed25519 (checked before any compare).
 */
export function isSignatureFormat(signature: unknown, alg: Algorithm = "hmac-sha256"): signature is string {
  return typeof signature === "string" && SIGNATURE_FORMAT[alg].test(signature);
}

/** Raw HMAC-SHA256 of canonical text. Canonical text is pure ASCII, so latin1 = UTF-8 here. */
function hmac(key: HmacKey, canonical: string): Buffer {
  return createHmac("sha256", key.bytes).update(canonical, "latin1").digest();
}

// L, the order of the Ed25519 base point, little-endian (RFC 8032 §5.1.7).
const ED25519_L = Buffer.from("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", "hex");

/**
 * True when a 64-byte Ed25519 signature's S (its second half, little-endian)
 * is below L, as RFC 8032 requires. OpenSSL checks it too, but S + L would
 * verify under a lax backend, so the rule is kept here whatever Node links against.
 */
export function hasCanonicalS(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i] as number;
    const l = ED25519_L[i] as number;
    if (s !== l) return s < l;
  }
  return false; // S == L
}

/**
 * Every 32-byte string that a lax decoder reads as a point of small order:
 * the 8 torsion points' canonical encodings, and the non-canonical ones
 * (y + p where that is below 2^255, and the sign bit set on x = 0): 14 in all.
 * Indexed by first byte so that a verify costs one array read for almost every R.
 */
const SMALL_ORDER_BY_FIRST_BYTE: (readonly Uint8Array[] | undefined)[] = (() => {
  const p = ed25519.Point.Fp.ORDER;
  const table: Uint8Array[][] = [];
  for (const hex of ED25519_TORSION_SUBGROUP) {
    const point = ed25519.Point.fromHex(hex);
    const { x, y } = point.toAffine();
    const sign = Number.parseInt(hex.slice(62), 16) & 0x80;
    const ys = y + p < 1n << 255n ? [y, y + p] : [y];
    const signs = x === 0n ? [0, 0x80] : [sign];
    for (const yy of ys) {
      for (const s of signs) {
        const bytes = Buffer.from(yy.toString(16).padStart(64, "0"), "hex").reverse();
        bytes[31] = (bytes[31] as number) | s;
        const list = table[bytes[0] as number] ?? [];
        list.push(bytes);
        table[bytes[0] as number] = list;
      }
    }
  }
  return Array.from({ length: 256 }, (_, i) => table[i]);
})();

/**
 * True when the 32 bytes at the start of `bytes` (an Ed25519 signature's R)
 * encode a point of small order, canonically or not. SPEC §7 makes such an R
 * `bad_signature`: OpenSSL's check is cofactorless, and the signer of a key
 * with a torsion component could otherwise make signatures that verify only there.
 */
export function isSmallOrderEncoding(bytes: Uint8Array): boolean {
  const candidates = SMALL_ORDER_BY_FIRST_BYTE[bytes[0] as number];
  if (candidates === undefined || bytes.length < 32) return false;
  // R is public: a plain early-exit compare, no allocation on the hot path.
  next: for (const candidate of candidates) {
    for (let i = 1; i < 32; i++) if (bytes[i] !== candidate[i]) continue next;
    return true;
  }
  return false;
}

function verifyEd25519(key: Ed25519Key, canonical: string, signature: Buffer): boolean {
  // Strict (SPEC §7): S < L, R not of small order, and a public key the loader vetted (fail closed).
  return (
    hasCanonicalS(signature) &&
    !isSmallOrderEncoding(signature) &&
    isVettedEd25519(key.publicKey) &&
    verify(null, Buffer.from(canonical, "latin1"), key.publicKey, signature)
  );
}

/** Lowercase hex signature of canonical text with `key`'s algorithm (SPEC §3, §7). */
export function signCanonical(key: Key, canonical: string): string {
  if (key.alg === "hmac-sha256") return hmac(key, canonical).toString("hex");
  if (!key.privateKey) {
    throw new SmcpUsageError("an ed25519: public key cannot sign; sign with the private key ed25519-secret:…");
  }
  return sign(null, Buffer.from(canonical, "latin1"), key.privateKey).toString("hex");
}

/**
 * Verifies `signature` over `canonical` against each key (rotation). Each key
 * takes only its own algorithm's form: a 64-digit HMAC never meets an Ed25519
 * key, nor the reverse. Returns the key that matched, or undefined.
 */
export function verifyCanonical(keys: readonly Key[], canonical: string, signature: string): Key | undefined {
  let matched: Key | undefined;
  for (const key of keys) {
    if (!isSignatureFormat(signature, key.alg)) continue;
    const given = Buffer.from(signature, "hex");
    if (key.alg === "hmac-sha256") {
      // Every HMAC key is tried even after a match, so timing does not tell which secret matched.
      if (timingSafeEqual(hmac(key, canonical), given) && matched === undefined) matched = key;
    } else if (matched === undefined && verifyEd25519(key, canonical, given)) {
      // Public keys hold no secret for timing to leak: stop at the first match (a verify is costly).
      matched = key;
    }
  }
  return matched;
}

/**
 * Refuses canonical text holding a lone surrogate. The canonical form writes
 * one escaped (SPEC §2), but every receiver refuses it, so a message carrying
 * one could never be verified: better a local error than a signed message the
 * peer answers with `bad_envelope`.
 */
function assertReceivable(canonical: string): void {
  if (hasLoneSurrogate(canonical)) {
    throw new CanonicalValueError("a lone surrogate is not JSON a receiver accepts (SPEC §2)");
  }
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
  const canonical = joinCanonicalObject(entries);
  assertReceivable(canonical);
  const signature = signCanonical(key, canonical);
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
  assertReceivable(head);
  const signature = signCanonical(key, `${head},${tail}`);
  return { message: { v: "mcp/0.1", ...fields, signature }, body: `${head},"signature":"${signature}",${tail}` };
}

/** The fields of a request envelope, before signing (`v` is always mcp/0.1). A type, not an interface: it is a JsonObject. */
export type RequestFields = {
  request_id: string;
  ts_ms: number;
  client_id: string;
  server_id: string;
  tool: string;
  args: JsonObject;
  nonce: string;
};

/**
 * Signs a request envelope. Like {@link signResponse}, its keys are fixed,
 * so their canonical order is too (args, client_id, nonce, request_id,
 * server_id, signature, tool, ts_ms, v): one pass, no sort, the signature
 * spliced in. Gives the same bytes as {@link signMessage} (tested); the
 * client signs every call with it.
 */
export function signRequest(fields: RequestFields, key: Key): SignedMessage<RequestFields & { v: string }> {
  // Untyped callers: a non-string id or tool must be refused, never written as its String() form.
  for (const name of ["request_id", "client_id", "server_id", "tool", "nonce"] as const) {
    if (typeof fields[name] !== "string") throw new CanonicalValueError(`${name} must be a string`);
  }
  const head = `{"args":${canonicalize(fields.args)},"client_id":${quoteString(fields.client_id)},"nonce":${quoteString(
    fields.nonce,
  )},"request_id":${quoteString(fields.request_id)},"server_id":${quoteString(fields.server_id)}`;
  const tail = `"tool":${quoteString(fields.tool)},"ts_ms":${canonicalize(fields.ts_ms)},"v":"mcp/0.1"}`;
  assertReceivable(head);
  assertReceivable(tail);
  const signature = signCanonical(key, `${head},${tail}`);
  return { message: { v: "mcp/0.1", ...fields, signature }, body: `${head},"signature":"${signature}",${tail}` };
}
