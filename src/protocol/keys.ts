import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { SmcpUsageError } from "./errors.js";
import { isJsonObject } from "./messages.js";

/** The signature algorithms of SPEC §3 and §7, named as `server_identity` reports them. */
export type Algorithm = "hmac-sha256" | "ed25519";

/** Prefix of an Ed25519 public key string (SPEC §7). */
export const ED25519_PUBLIC_PREFIX = "ed25519:";
/** Prefix of an Ed25519 private key string: the 32-byte seed (SPEC §7). */
export const ED25519_SECRET_PREFIX = "ed25519-secret:";
/** Secrets shorter than this many bytes are refused. */
export const MIN_SECRET_BYTES = 16;

/** An HMAC-SHA256 key: the secret's bytes, with a public label. */
export interface HmacKey {
  readonly alg: "hmac-sha256";
  /** Public label of the key; reported as the server fingerprint. Never derived from the secret. */
  readonly kid: string;
  /** The secret's bytes (UTF-8 of a string secret). */
  readonly bytes: Buffer;
}

/** An Ed25519 key: always its public half; the private half only when it may sign. */
export interface Ed25519Key {
  readonly alg: "ed25519";
  /** Public label of the key. */
  readonly kid: string;
  /** Verifies. Made once per key, never per request. */
  readonly publicKey: KeyObject;
  /** Signs; undefined for a public key (a client record, a pinned server key). */
  readonly privateKey: KeyObject | undefined;
  /** The public key as a string, `ed25519:` + base64url. */
  readonly public: string;
}

/** One key of either algorithm. Its algorithm is the record's, never the message's. */
export type Key = HmacKey | Ed25519Key;

/** A key as configured: text (an HMAC secret, `ed25519:…` or `ed25519-secret:…`), HMAC bytes, or with a label. */
export type SecretInput = string | Uint8Array | { secret: string | Uint8Array; kid?: string };

/** Someone's keys: one, or several during rotation (the first signs, any verifies). */
export type SecretsInput = SecretInput | readonly SecretInput[];

// RFC 8410 DER headers: a raw 32-byte seed / public key follows each. Node reads
// an Ed25519 key from DER or JWK only, and its JWK import needs `x` beside `d`.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const KEY_TEXT = /^[A-Za-z0-9_-]{43}$/;
// Anything that looks meant as an Ed25519 key string: a typo there must not quietly become an HMAC secret.
const LOOKS_ED25519 = /^ed25519[-_:]/i;

/** Decodes 32 bytes of unpadded, canonical base64url, or explains what is wrong (never quoting the text). */
function decode32(text: string, what: string, who: string): Buffer {
  const bytes = KEY_TEXT.test(text) ? Buffer.from(text, "base64url") : undefined;
  // Canonical: the 43rd character's two spare bits are zero, so each key has exactly one spelling.
  if (bytes?.length !== 32 || bytes.toString("base64url") !== text) {
    throw new SmcpUsageError(
      `${who}: ${what} must be exactly 43 base64url characters (32 bytes, no padding), as \`smcp keygen --alg ed25519\` prints it; copy it again`,
    );
  }
  return bytes;
}

/** The `ed25519:` string of a public key. */
function publicString(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(SPKI_ED25519_PREFIX.length);
  return `${ED25519_PUBLIC_PREFIX}${raw.toString("base64url")}`;
}

/**
 * Why 32 bytes are not a usable Ed25519 public key (SPEC §7 key hygiene), or
 * undefined when they are: the encoding must be canonical (y < p, a y that
 * has an x on the curve, no sign bit on x = 0) and the point not of small
 * order. Against a small-order key, R = identity and S = 0 verify on every
 * message, so such a key would let anyone sign as its owner.
 */
export function ed25519PublicKeyFlaw(raw: Uint8Array): string | undefined {
  if (raw.length !== 32) return "not 32 bytes";
  let point: ReturnType<typeof ed25519.Point.fromBytes>;
  try {
    // zip215 = false: RFC 8032's strict decoding, which refuses every non-canonical encoding.
    point = ed25519.Point.fromBytes(raw, false);
  } catch {
    return "not the canonical encoding of a point on the curve";
  }
  if (point.isSmallOrder()) return "a small-order point: anyone could forge its signatures";
  return undefined;
}

// The KeyObjects this module made from vetted bytes: verification refuses any other (fail closed),
// so an Ed25519Key built by hand around a small-order point never verifies anything.
const vetted = new WeakSet<KeyObject>();

/** True when `publicKey` was made here from a key that passed {@link ed25519PublicKeyFlaw}. */
export function isVettedEd25519(publicKey: KeyObject): boolean {
  return vetted.has(publicKey);
}

function ed25519FromSeed(seed: Buffer, kid: string): Ed25519Key {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
  const publicKey = createPublicKey(privateKey);
  // A seed's public key is a clamped scalar times the base point: never small order, so no check.
  vetted.add(publicKey);
  return Object.freeze({ alg: "ed25519", kid, publicKey, privateKey, public: publicString(publicKey) });
}

/** Refuses a public key that fails SPEC §7's key hygiene, naming the fix, never quoting the key. */
function assertUsablePublic(raw: Uint8Array, what: string, who: string): void {
  const flaw = ed25519PublicKeyFlaw(raw);
  if (flaw !== undefined) {
    throw new SmcpUsageError(
      `${who}: ${what} is not a usable Ed25519 public key (${flaw}); make a key pair with \`smcp keygen --alg ed25519\``,
    );
  }
}

function ed25519FromPublic(raw: Buffer, kid: string, who: string): Ed25519Key {
  assertUsablePublic(raw, "the ed25519: key", who);
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
  vetted.add(publicKey);
  return Object.freeze({ alg: "ed25519", kid, publicKey, privateKey: undefined, public: publicString(publicKey) });
}

/**
 * Parses one configured key (SPEC §7): `ed25519:` + base64url(32) is a public
 * key, `ed25519-secret:` + base64url(32 seed) a private key, other text or
 * bytes an HMAC secret of at least 16 bytes. Strict: anything else is an
 * {@link SmcpUsageError} naming the fix, never quoting the key.
 */
export function parseKey(input: SecretInput, who: string): Key {
  const raw = typeof input === "string" || input instanceof Uint8Array ? input : input.secret;
  const kid = typeof input === "object" && !(input instanceof Uint8Array) && input.kid ? input.kid : "default";
  if (typeof raw === "string") {
    if (raw.startsWith(ED25519_SECRET_PREFIX)) {
      return ed25519FromSeed(decode32(raw.slice(ED25519_SECRET_PREFIX.length), "an ed25519-secret: key", who), kid);
    }
    if (raw.startsWith(ED25519_PUBLIC_PREFIX)) {
      return ed25519FromPublic(decode32(raw.slice(ED25519_PUBLIC_PREFIX.length), "an ed25519: public key", who), kid, who);
    }
    if (LOOKS_ED25519.test(raw)) {
      throw new SmcpUsageError(
        `${who}: a key starting with 'ed25519' must be 'ed25519:' + public key or 'ed25519-secret:' + seed (\`smcp keygen --alg ed25519\` prints both)`,
      );
    }
  }
  const bytes = typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.from(raw);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new SmcpUsageError(
      `${who} is ${bytes.length} bytes; use at least ${MIN_SECRET_BYTES} (generate one with \`smcp keygen\`)`,
    );
  }
  return Object.freeze({ alg: "hmac-sha256", kid, bytes });
}

/** Parses someone's keys (one or a list, for rotation). `who` names the owner in messages. */
export function toKeys(input: SecretsInput, who: string): Key[] {
  const list = Array.isArray(input) ? (input as readonly SecretInput[]) : [input as SecretInput];
  if (list.length === 0) throw new SmcpUsageError(`${who} has no secret; give at least one (generate one with \`smcp keygen\`)`);
  return list.map((item, index) => parseKey(item, `${who} secret #${index + 1}`));
}

/** True when a configured key is an Ed25519 private key (`ed25519-secret:…`). */
export function isEd25519Secret(input: SecretInput): boolean {
  const raw = typeof input === "object" && !(input instanceof Uint8Array) ? input.secret : input;
  return typeof raw === "string" && raw.startsWith(ED25519_SECRET_PREFIX);
}

/** True when a configured key is an Ed25519 key of either kind (by its prefix). */
export function isEd25519Text(text: string): boolean {
  return text.startsWith(ED25519_PUBLIC_PREFIX) || text.startsWith(ED25519_SECRET_PREFIX);
}

/** A new Ed25519 key pair as SPEC §7 strings. */
export function generateEd25519(): { secret: string; public: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(PKCS8_ED25519_PREFIX.length);
  return { secret: `${ED25519_SECRET_PREFIX}${seed.toString("base64url")}`, public: publicString(publicKey) };
}

/** The `ed25519:` public key string of an `ed25519-secret:` key. */
export function publicKeyOf(secret: string, who: string): string {
  const key = parseKey(secret, who);
  if (key.alg !== "ed25519") throw new SmcpUsageError(`${who} is not an Ed25519 key`);
  return key.public;
}

/**
 * Reads an Ed25519 JWK (RFC 8037: `kty: "OKP"`, `crv: "Ed25519"`, `x`, and
 * `d` for a private key) as a SPEC §7 key string. A private JWK whose `x`
 * is not the public key of its `d` is refused (Node's import would ignore `x`).
 */
export function jwkToKeyString(jwk: unknown, who: string): string {
  if (!isJsonObject(jwk)) throw new SmcpUsageError(`${who}: a JWK must be a JSON object`);
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519") {
    throw new SmcpUsageError(
      `${who}: only Ed25519 JWKs are accepted (kty "OKP", crv "Ed25519"); give an HMAC secret as a plain string`,
    );
  }
  if (typeof jwk.x !== "string") throw new SmcpUsageError(`${who}: the JWK has no "x" (its public key; RFC 8037 requires it)`);
  const x = decode32(jwk.x, 'the JWK\'s "x"', who);
  if (jwk.d === undefined) {
    // Refused here, where the file is read, so the message names the JWK rather than a key string.
    assertUsablePublic(x, 'the JWK\'s "x"', who);
    return `${ED25519_PUBLIC_PREFIX}${x.toString("base64url")}`;
  }
  if (typeof jwk.d !== "string") throw new SmcpUsageError(`${who}: the JWK's "d" must be a base64url string`);
  const key = ed25519FromSeed(decode32(jwk.d, 'the JWK\'s "d"', who), "default");
  if (key.public !== `${ED25519_PUBLIC_PREFIX}${x.toString("base64url")}`) {
    throw new SmcpUsageError(`${who}: the JWK's "x" is not the public key of its "d"; export the key pair again`);
  }
  return `${ED25519_SECRET_PREFIX}${jwk.d}`;
}
