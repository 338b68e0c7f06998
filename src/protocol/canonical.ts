/**
 * Canonical JSON, byte-compatible with Python's
 * `json.dumps(obj, separators=(",", ":"), sort_keys=True)` (ensure_ascii on):
 * the writer. The lossless parser, which computes the canonical form of a
 * message from its own text, is `parse.ts`.
 *
 * This is the one piece of JSON machinery smcp owns: no library reproduces
 * Python's float repr, code-point key order and ASCII escaping together.
 */

import { Buffer } from "node:buffer";

/** A JSON value as smcp hands it around. Integers beyond 2^53 are `bigint`. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Thrown when a JS value cannot be written as canonical JSON. */
export class CanonicalValueError extends TypeError {
  override readonly name = "CanonicalValueError";
}

const SAFE_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const HEX = "0123456789abcdef";

/** A string as Python writes it with ensure_ascii: `"é"` -> `"\u00e9"`. */
export function quoteString(s: string): string {
  if (SAFE_ASCII.test(s)) return `"${s}"`;
  // A long text with much to escape (a megabyte of emoji is 6 MB of escapes) is written as bytes: the
  // string path below appends one small string per unit, which took ~90 ms a megabyte.
  if (s.length > LONG_STRING) return quoteLong(s);
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue;
    if (i > start) out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      default:
        // UTF-16 code units map one to one onto Python's escapes: astral
        // characters come out as surrogate pairs, lone surrogates as themselves.
        out += `\\u${HEX[(c >> 12) & 15]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
    }
  }
  if (start < s.length) out += s.slice(start);
  return `${out}"`;
}

// Escapes in canonical text, left to right (so `\\\\` is consumed whole): a surrogate pair, a lone
// surrogate, or any other escape.
const ESCAPES = /\\(?:ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|u(d[89a-f][0-9a-f]{2})|u[0-9a-f]{4}|.)/g;

/**
 * True when canonical text (as {@link canonicalize} writes it) holds a lone
 * surrogate escape, which every receiver refuses (SPEC §2). A substring search
 * unless the text has a `\\ud` escape at all.
 */
export function hasLoneSurrogate(canonical: string): boolean {
  if (!canonical.includes("\\ud")) return false;
  for (const match of canonical.matchAll(ESCAPES)) if (match[1] !== undefined) return true;
  return false;
}

const LONG_STRING = 256;
const HEX_BYTES = Buffer.from(HEX, "latin1");
/** The letter of a short escape (`\n` -> `n`) by code unit, 0 where there is none. */
const SHORT_LETTER = new Uint8Array(0x60);
for (const [unit, letter] of [
  [0x22, '"'],
  [0x5c, "\\"],
  [0x0a, "n"],
  [0x0d, "r"],
  [0x09, "t"],
  [0x08, "b"],
  [0x0c, "f"],
] as const) {
  SHORT_LETTER[unit] = letter.charCodeAt(0);
}

/** {@link quoteString} for long strings: the same text, written into one buffer. */
function quoteLong(s: string): string {
  const out = Buffer.allocUnsafe(s.length * 6 + 2);
  return out.toString("latin1", 0, quoteInto(s, out, 0));
}

/**
 * {@link quoteString}'s text as bytes, written into `out` from `at` (which must hold `s.length * 6 + 2` more);
 * returns where it ends. For a caller that builds canonical text in a buffer of its own.
 */
export function quoteInto(s: string, out: Uint8Array, at: number): number {
  let n = at;
  let view: DataView | undefined;
  out[n++] = 0x22;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const letter = c < 0x60 ? (SHORT_LETTER[c] as number) : 0;
    if (letter !== 0) {
      out[n++] = 0x5c;
      out[n++] = letter;
    } else if (c >= 0x20 && c < 0x7f) {
      out[n++] = c;
    } else {
      // `\u` and the four hex digits from one table: two stores instead of six (a megabyte of emoji is 3 MB of these).
      view ??= new DataView(out.buffer, out.byteOffset, out.byteLength);
      HEX4 ??= hexTable();
      view.setUint16(n, 0x755c, true);
      view.setUint32(n + 2, HEX4[c] as number, true);
      n += 6;
    }
  }
  out[n++] = 0x22;
  return n;
}

/** The four lowercase hex digits of each UTF-16 unit, as the bytes of a little-endian uint32; built on first use. */
let HEX4: Uint32Array | undefined;
function hexTable(): Uint32Array {
  const table = new Uint32Array(0x10000);
  for (let c = 0; c < 0x10000; c++) {
    table[c] =
      (HEX_BYTES[(c >> 12) & 15] as number) |
      ((HEX_BYTES[(c >> 8) & 15] as number) << 8) |
      ((HEX_BYTES[(c >> 4) & 15] as number) << 16) |
      ((HEX_BYTES[c & 15] as number) << 24);
  }
  return table;
}

/**
 * Python's `repr(float)`: shortest round-trip digits, positional for decimal
 * exponents -4..15 (always with a fraction), scientific otherwise.
 */
export function formatPythonFloat(n: number): string {
  if (!Number.isFinite(n)) throw new CanonicalValueError("NaN and Infinity are not JSON");
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const abs = Math.abs(n);
  if (abs >= 1e-4 && abs < 1e16) {
    // JS and Python agree on shortest digits and on positional notation here.
    const s = String(n);
    return Number.isInteger(n) ? `${s}.0` : s;
  }
  // toExponential() without an argument yields the shortest round-trip digits.
  const e = n.toExponential();
  const at = e.indexOf("e");
  const mantissa = e.slice(0, at);
  const exp = Number(e.slice(at + 1));
  const sign = exp < 0 ? "-" : "+";
  const digits = Math.abs(exp);
  return `${mantissa}e${sign}${digits < 10 ? "0" : ""}${digits}`;
}

/** Any UTF-16 unit from U+D800 up: below it, UTF-16 order is code-point order (the engine's own sort will do). */
export const ABOVE_D800 = /[\ud800-\uffff]/;

/** Orders two strings by Unicode code point, as Python's `sort_keys` does. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // Below the surrogate range UTF-16 order is code-point order.
    if ((ca < 0xd800 || ca > 0xdfff) && (cb < 0xd800 || cb > 0xdfff)) return ca - cb;
    return compareByCodePoints(a, b);
  }
  return a.length - b.length;
}

function compareByCodePoints(a: string, b: string): number {
  const pa = Array.from(a);
  const pb = Array.from(b);
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const ca = (pa[i] as string).codePointAt(0) as number;
    const cb = (pb[i] as string).codePointAt(0) as number;
    if (ca !== cb) return ca - cb;
  }
  return pa.length - pb.length;
}

function byKey(a: [string, string], b: [string, string]): number {
  return a[0] === b[0] ? 0 : compareCodePoints(a[0], b[0]);
}

/** Joins `[key, canonicalValue]` pairs into a canonical object (sorts in place). */
export function joinCanonicalObject(entries: [string, string][]): string {
  entries.sort(byKey);
  let out = "{";
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as [string, string];
    if (i > 0) out += ",";
    out += `${quoteString(entry[0])}:${entry[1]}`;
  }
  return `${out}}`;
}

/**
 * Canonical text of a JS value (what a signer builds). A number that is an
 * integer of magnitude below 1e21 is written as an integer, any other as a
 * Python float; `bigint` as its digits. Object keys whose value is
 * `undefined` are left out, as `JSON.stringify` does.
 */
export function canonicalize(value: unknown): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  switch (typeof value) {
    case "string":
      return quoteString(value);
    case "number":
      if (Number.isInteger(value) && Math.abs(value) < 1e21) {
        if (Number.isSafeInteger(value)) return value === 0 ? "0" : String(value);
        // Beyond 2^53 String() rounds to the shortest digits (2**60 -> "1152921504606847000"):
        // write the integer the double holds exactly, as Python does for the same value.
        return BigInt(value).toString();
      }
      return formatPythonFloat(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "object": {
      if (value === null) return "null";
      if (depth >= 1000) throw new CanonicalValueError("value is nested too deeply");
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item === undefined) throw new CanonicalValueError("undefined in an array is not JSON");
          if (i > 0) out += ",";
          out += write(item, depth + 1);
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalValueError("only plain objects, arrays and JSON primitives can be canonicalized");
      }
      const entries: [string, string][] = [];
      for (const key of Object.keys(value)) {
        const item: unknown = (value as Record<string, unknown>)[key];
        if (item === undefined) continue;
        entries.push([key, write(item, depth + 1)]);
      }
      return joinCanonicalObject(entries);
    }
    default:
      throw new CanonicalValueError(`a ${typeof value} is not JSON`);
  }
}
