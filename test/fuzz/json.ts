/**
 * Arbitraries for JSON: texts built token by token (every number shape,
 * every escape, astral characters, lone-surrogate escapes, random
 * whitespace, duplicate keys, deep and wide nesting), JS values as a signer
 * holds them, and real signed envelopes and responses.
 */
import fc from "fast-check";
import type { JsonValue } from "../../src/protocol/canonical.js";
import { type Key, toKeys } from "../../src/protocol/keys.js";
import { signMessage, signResponse } from "../../src/protocol/sign.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "../helpers.js";
import type { Model } from "./oracle.js";

// ---------------------------------------------------------------------------
// Texts

const ws = fc.constantFrom("", "", "", "", " ", "\n", "\t", "\r", " \r\n\t ");

/** Integer lexemes: small, around 2^53, huge, and around the 64-character limit. */
export const intLexeme: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.stringMatching(/^-?[1-9][0-9]{0,70}$/),
  fc.constantFrom(
    "0",
    "-0",
    "1795304232049",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "18446744073709551616",
    "1".repeat(64),
    `-${"1".repeat(63)}`,
    "1".repeat(65),
    `-${"9".repeat(64)}`,
  ),
);

/** Float lexemes: fractions, exponents of both cases and signs, JS and Python reprs, overflow, underflow. */
export const floatLexeme: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?$/).filter((s) => /[.eE]/.test(s)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => {
    const s = String(d);
    return /[.e]/.test(s) ? s : `${s}.0`;
  }),
  fc.constantFrom(
    "1E400",
    "-1e400",
    "1e-400",
    "1795304232049.0",
    "1795304232049E0",
    "1.795304232049e12",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "2.2250738585072014e-308",
    "5e-324",
    "2.4703282292062328e-324",
    "1e16",
    "1e15",
    "9999999999999999.0",
    "0.0001",
    "0.00009999",
    "123456789012345678901234567890.5",
    "9007199254740993.0",
    "1e22",
    "0e0",
    "-0.0",
    "0.1",
    `0.${"1".repeat(62)}`,
    `0.${"1".repeat(63)}`,
  ),
);

const hex4 = (n: number, upper: boolean) => {
  const h = n.toString(16).padStart(4, "0");
  return `\\u${upper ? h.toUpperCase() : h}`;
};

/** One piece of a string literal's inside: plain text, escapes, raw non-ASCII, and a few invalid forms. */
const stringPiece: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[ !#-[\]-~]{0,8}$/) },
  { weight: 2, arbitrary: fc.constantFrom('\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t") },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.boolean()).map(([n, up]) => hex4(n, up)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0x7f }), fc.boolean()).map(([n, up]) => hex4(n, up)) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 0x10000, max: 0x10ffff }), fc.boolean()).map(([cp, up]) => {
      const s = String.fromCodePoint(cp);
      return hex4(s.charCodeAt(0), up) + hex4(s.charCodeAt(1), up);
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((n) => hex4(n, false)) },
  // Half a pair escaped and half raw (only a JS string can hold the raw half).
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 0x10000, max: 0x10ffff }), fc.boolean()).map(([cp, rawFirst]) => {
      const s = String.fromCodePoint(cp);
      return rawFirst ? (s[0] as string) + hex4(s.charCodeAt(1), false) : hex4(s.charCodeAt(0), false) + (s[1] as string);
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 0x80, max: 0xffff })
      .filter((n) => n < 0xd800 || n > 0xdfff)
      .map((n) => String.fromCharCode(n)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)) },
  { weight: 1, arbitrary: fc.constantFrom("\u007f", "\u0085", "\u2028", "\ufeff", "\uffff", "\ufffe") },
  // Invalid inside a string: raw control characters, unknown escapes, short \u escapes.
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }).map((n) => String.fromCharCode(n)) },
  { weight: 1, arbitrary: fc.constantFrom("\\x41", "\\u12", "\\u12G4", "\\U0041", "\\'", "\\ ", "\\0") },
);

/** A string literal, quotes included. */
export const stringLexeme: fc.Arbitrary<string> = fc.array(stringPiece, { maxLength: 6 }).map((p) => `"${p.join("")}"`);

const scalarText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: stringLexeme },
  { weight: 2, arbitrary: intLexeme },
  { weight: 2, arbitrary: floatLexeme },
  { weight: 1, arbitrary: fc.constantFrom("true", "false", "null") },
  // Not JSON: Python's extensions and near misses.
  {
    weight: 1,
    arbitrary: fc.constantFrom("NaN", "Infinity", "-Infinity", "tru", "nul", "01", "-", "+1", ".5", "1.", "1e", "0x10"),
  },
);

// Keys from a small pool collide often (duplicate keys) and test prototype names.
const keyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: stringLexeme },
  {
    weight: 2,
    arbitrary: fc.constantFrom('"a"', '"b"', '"\\u0061"', '"__proto__"', '"constructor"', '"toString"', '"signature"'),
  },
);

const trees = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalarText, tie("array"), tie("object")),
  array: fc
    .array(fc.tuple(ws, tie("value"), ws), { maxLength: 6 })
    .chain((items) => ws.map((inner) => (items.length === 0 ? `[${inner}]` : `[${items.map((i) => i.join("")).join(",")}]`))),
  object: fc
    .array(fc.tuple(ws, keyText, ws, ws, tie("value"), ws), { maxLength: 6 })
    .chain((members) =>
      ws.map((inner) =>
        members.length === 0 ? `{${inner}}` : `{${members.map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`).join(",")}}`,
      ),
    ),
}));

/** A random JSON-ish document (mostly valid, sometimes not). */
export const treeText: fc.Arbitrary<string> = fc.tuple(ws, trees.value, ws).map((p) => p.join(""));

/** Nesting around the 64-level limit, through arrays and objects. */
export const deepText: fc.Arbitrary<string> = fc
  .tuple(fc.array(fc.boolean(), { minLength: 55, maxLength: 80 }), scalarText)
  .map(([levels, inner]) => {
    let open = "";
    let close = "";
    for (const isArray of levels) {
      open += isArray ? "[" : '{"k":';
      close = (isArray ? "]" : "}") + close;
    }
    return open + inner + close;
  });

/** Wide arrays and objects (hundreds of members, keys out of order). */
export const wideText: fc.Arbitrary<string> = fc.oneof(
  fc.array(scalarText, { minLength: 50, maxLength: 400 }).map((items) => `[${items.join(",")}]`),
  fc.tuple(fc.array(fc.tuple(scalarText, fc.nat()), { minLength: 50, maxLength: 300 }), fc.boolean()).map(([items, sorted]) => {
    const members = items.map(([v, n], i) => [`k${sorted ? i : (n * 7919) % 100_000}_${i}`, v] as const);
    return `{${members.map(([k, v]) => `"${k}":${v}`).join(",")}}`;
  }),
);

// ---------------------------------------------------------------------------
// JS values (what a signer holds)

const jsNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 0.1, 1e-7, 5e-324, 1e15, 1e16, 1e20, 1e21, 2 ** 53, 2 ** 53 + 2, 2 ** 60, 1.7976931348623157e308, -1e-5),
);

/** JS strings: any code point, lone surrogates included. */
export const jsString: fc.Arbitrary<string> = fc.string({
  unit: fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((n) => String.fromCharCode(n)) },
    { weight: 2, arbitrary: fc.constantFrom('"', "\\", "\n", "\u0000", "\u001b", "\u007f") },
  ),
  maxLength: 12,
});

const jsKey: fc.Arbitrary<string> = fc.oneof(
  jsString,
  fc.constantFrom("__proto__", "constructor", "a", "b", "1", "10", "\uffff", "😀"),
);

/** A JS value a signer may canonicalize: plain objects (`__proto__` an own key), arrays, numbers, bigints, strings. */
export const jsValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue; array: JsonValue[]; object: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    jsNumber,
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    jsString,
    tie("array"),
    tie("object"),
  ),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.uniqueArray(fc.tuple(jsKey, tie("value")), { maxLength: 5, selector: ([k]) => k }).map((entries) => {
    const out: Record<string, JsonValue> = {};
    // defineProperty: "__proto__" becomes an own key, as the parser makes it.
    for (const [k, v] of entries)
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    return out;
  }),
})).value;

/**
 * The Python value a JS value stands for, by SPEC §2's rule for JS signers:
 * a number that is an integer of magnitude below 1e21 is an int, any other a float.
 */
export function toModel(value: JsonValue): Model {
  if (value === null) return ["n"];
  switch (typeof value) {
    case "boolean":
      return ["b", value];
    case "bigint":
      return ["i", value.toString()];
    case "number":
      return Number.isInteger(value) && Math.abs(value) < 1e21 ? ["i", BigInt(value).toString()] : ["f", String(value)];
    case "string":
      return ["s", value];
    default:
      if (Array.isArray(value)) return ["a", value.map(toModel)];
      return ["o", Object.keys(value).map((k) => [k, toModel((value as Record<string, JsonValue>)[k] as JsonValue)])];
  }
}

// ---------------------------------------------------------------------------
// Messages

/** The clock of every fuzzed message and server: fixed, so a seed replays the same bytes. */
export const FIXED_NOW = 1_795_304_232_049;

/** The test client's and server's signing keys. */
export const clientKey = toKeys(CLIENT_SECRET, "test client")[0] as Key;
export const serverKey = toKeys(SERVER_SECRET, "test server")[0] as Key;

/** True when no string or key in `value` holds a lone surrogate. */
export function wellFormed(value: JsonValue): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v));
}

/** Values without lone surrogates: what a receiver accepts. */
export const wellFormedValue: fc.Arbitrary<JsonValue> = jsValue.filter(wellFormed);

/** A signed request envelope's text, as a client sends it. */
export const envelopeText: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom("batch_sum", "poll_job", "server_identity", "nope"),
    fc.dictionary(fc.constantFrom("numbers", "job_id", "x", "é😀"), wellFormedValue, { maxKeys: 3 }),
    fc.uuid(),
    fc.uuid(),
  )
  .map(([tool, args, requestId, nonce]) => {
    const fields = {
      v: "mcp/0.1",
      request_id: requestId,
      ts_ms: FIXED_NOW,
      client_id: CLIENT_ID,
      server_id: SERVER_ID,
      tool,
      args,
      nonce,
    };
    return signMessage(fields, clientKey).body;
  });

/** A signed response's text, as a server sends it. */
export const responseText: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom("ok", "accepted", "running", "done", "error"),
    fc.option(wellFormedValue),
    fc.option(jsString),
    fc.uuid(),
  )
  .map(
    ([status, result, error, requestId]) =>
      signResponse(
        {
          request_id: requestId,
          ts_ms: FIXED_NOW,
          ok: status !== "error",
          server_id: SERVER_ID,
          status,
          result: result !== null && typeof result === "object" && !Array.isArray(result) ? result : { value: result },
          error: error?.isWellFormed() ? error : null,
        },
        serverKey,
      ).body,
  );

/** Any of the above: what the parser is fed. */
export const anyDocument: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: treeText },
  { weight: 1, arbitrary: deepText },
  { weight: 1, arbitrary: wideText },
  { weight: 2, arbitrary: envelopeText },
  { weight: 2, arbitrary: responseText },
);
