/**
 * The lossless JSON parser (SPEC §2): reads a message's own text once and
 * returns both the JS value and the canonical text computed from the original
 * lexemes (so a signature is verified over exactly what was sent). Refuses
 * duplicate keys, NaN/Infinity, float overflow, lone surrogates, invalid
 * UTF-8, and anything past the limits below.
 */

import { isAscii, isUtf8 } from "node:buffer";
import {
  ABOVE_D800,
  compareCodePoints,
  formatPythonFloat,
  type JsonObject,
  type JsonValue,
  quoteInto,
  quoteString,
} from "./canonical.js";

/** Limits a receiver enforces while parsing (SPEC §2). */
export interface ParseLimits {
  /** Deepest container nesting allowed; the top-level object is depth 1. Default 64. */
  maxDepth?: number;
  /** Longest number lexeme allowed. Default 64. */
  maxNumberLength?: number;
  /** Most members one object may have. Default 10,000. */
  maxMembers?: number;
}

/** Options for {@link parseLossless}. */
export interface ParseOptions extends ParseLimits {
  /** A top-level key left out of `canonical` (but kept in `value`), e.g. `"signature"`. */
  omitTopLevelKey?: string;
  /**
   * Whether text already in canonical form may take the fast path (one scan that proves it canonical, then
   * V8's `JSON.parse` for the value, and the text itself, less the omitted member, as `canonical`).
   * Default true; false forces the full parser (tests compare the two).
   */
  fastPath?: boolean;
}

/** What {@link parseLossless} returns. */
export interface ParsedJson {
  /** The document as JS values (objects are plain, `__proto__` is an own key). */
  value: JsonValue;
  /** Canonical text of the document, computed from the original lexemes. */
  canonical: string;
  /**
   * Top-level keys whose value was written as a float lexeme (`1.0`, `1e3`):
   * the value alone cannot tell `1795304232049.0` from `1795304232049`, and
   * SPEC §1 makes some fields integers. Undefined when there are none.
   */
  floatKeys?: string[];
  /**
   * Members of the top-level `args` object written as float lexemes: a
   * tool argument its schema makes an integer must be an integer lexeme
   * (SPEC §2), which the value alone cannot tell. Undefined when there are none.
   */
  floatArgs?: string[];
}

/** Thrown for text that is not acceptable JSON under SPEC §2. Never carries the input. */
export class JsonSyntaxError extends Error {
  override readonly name = "JsonSyntaxError";
}

const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_NUMBER_LENGTH = 64;
// SPEC §2: bounds the cost of one object (sorting, duplicate checks) whatever the body size.
const DEFAULT_MAX_MEMBERS = 10_000;

/** Decodes UTF-8 strictly (invalid bytes are an error; a BOM is kept and then rejected). */
export function decodeUtf8(bytes: Uint8Array): string {
  // isUtf8 is a native check (surrogate code points and overlongs are invalid), then a plain decode.
  if (!isUtf8(bytes)) throw new JsonSyntaxError("invalid UTF-8");
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/**
 * Parses JSON text (or UTF-8 bytes) without losing anything the signature
 * covers, and returns both the JS value and the canonical text.
 *
 * Rejects duplicate keys, NaN/Infinity, float overflow, lone surrogates,
 * invalid UTF-8, nesting beyond `maxDepth` and number lexemes longer than
 * `maxNumberLength`.
 */
export function parseLossless(input: string | Uint8Array, options: ParseOptions = {}): ParsedJson {
  // A raw lone surrogate (only a JS string can hold one) could pair with an escaped half
  // inside a string ("\\ud83d" + raw U+DE00): refuse it before it can (SPEC §2).
  if (typeof input === "string" && !input.isWellFormed()) throw new JsonSyntaxError("lone surrogate in the text");
  let text: string;
  // Bytes found to be ASCII without DEL (natively, at memory speed) hold no unit that canonical text escapes,
  // which spares the fast path's string scan its own search for them.
  let plainAscii = false;
  if (typeof input === "string") {
    text = input;
  } else {
    const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (isAscii(bytes)) {
      text = bytes.toString("latin1");
      plainAscii = bytes.indexOf(0x7f) === -1;
    } else {
      text = decodeUtf8(bytes);
    }
  }
  if (options.fastPath !== false) {
    const fast = parseCanonical(
      text,
      options.maxDepth ?? DEFAULT_MAX_DEPTH,
      options.maxNumberLength ?? DEFAULT_MAX_NUMBER_LENGTH,
      options.omitTopLevelKey,
      options.maxMembers ?? DEFAULT_MAX_MEMBERS,
      plainAscii,
    );
    if (fast) return fast;
  }
  const parser = new Parser(
    text,
    options.maxDepth ?? DEFAULT_MAX_DEPTH,
    options.maxNumberLength ?? DEFAULT_MAX_NUMBER_LENGTH,
    options.omitTopLevelKey,
    options.maxMembers ?? DEFAULT_MAX_MEMBERS,
  );
  return parser.document();
}

/** Parses JSON text losslessly and returns only the value. */
export function parseJson(input: string | Uint8Array, limits: ParseLimits = {}): JsonValue {
  return parseLossless(input, limits).value;
}

// JSON's two-character escapes, by the character after the backslash.
const SHORT_ESCAPES = new Map<number, string>([
  [0x22, '"'],
  [0x5c, "\\"],
  [0x2f, "/"],
  [0x62, "\b"],
  [0x66, "\f"],
  [0x6e, "\n"],
  [0x72, "\r"],
  [0x74, "\t"],
]);

// Characters a string may hold that canonical form writes as they are: printable ASCII but `"` and `\`.
const VERBATIM = new Uint8Array(128);
for (let c = 0x20; c < 0x7f; c++) VERBATIM[c] = c === 0x22 || c === 0x5c ? 0 : 1;

/**
 * Recursive descent over the text. Each method returns the value it parsed
 * and leaves that value's canonical text in `this.canonical`, so no node
 * object is allocated; strings of plain ASCII reuse their own text.
 */
class Parser {
  private i = 0;
  private canonical = "";
  // Set by number(): whether the lexeme just read had a fraction or an exponent.
  private lastNumberWasFloat = false;
  private floatKeys: string[] | undefined;
  private floatArgs: string[] | undefined;
  // True while the value of the top-level `args` member is being read.
  private inArgs = false;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
    private readonly maxNumberLength: number,
    private readonly omitKey: string | undefined,
    private readonly maxMembers: number,
  ) {}

  document(): ParsedJson {
    this.skipWs();
    const value = this.value(0);
    this.skipWs();
    if (this.i !== this.s.length) this.fail("unexpected text after the document");
    const parsed: ParsedJson = { value, canonical: this.canonical };
    if (this.floatKeys) parsed.floatKeys = this.floatKeys;
    if (this.floatArgs) parsed.floatArgs = this.floatArgs;
    return parsed;
  }

  private fail(reason: string): never {
    throw new JsonSyntaxError(`${reason} at offset ${this.i}`);
  }

  private failAt(at: number, reason: string): never {
    this.i = at;
    return this.fail(reason);
  }

  private skipWs(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  private value(depth: number): JsonValue {
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b:
        return this.object(depth + 1);
      case 0x5b:
        return this.array(depth + 1);
      case 0x22:
        return this.string();
      case 0x74:
        return this.literal("true", true);
      case 0x66:
        return this.literal("false", false);
      case 0x6e:
        return this.literal("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? "unexpected end of input" : "unexpected character");
    }
  }

  private literal(word: string, value: JsonValue): JsonValue {
    if (!this.s.startsWith(word, this.i)) this.fail("invalid literal");
    this.i += word.length;
    this.canonical = word;
    return value;
  }

  private object(depth: number): JsonObject {
    if (depth > this.maxDepth) this.fail("nesting too deep");
    const s = this.s;
    this.i++;
    const value: JsonObject = {};
    this.skipWs();
    if (s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      this.canonical = "{}";
      return value;
    }
    // Text from a canonical signer arrives sorted: members are appended as they come, and
    // the parallel lists are only sorted when a key arrives out of order.
    let out = "{";
    let sorted = true;
    let omitted = false;
    const keys: string[] = [];
    const members: string[] = [];
    for (let count = 1; ; count++) {
      if (count > this.maxMembers) this.fail("too many members in one object");
      if (s.charCodeAt(this.i) !== 0x22) this.fail("expected a key");
      const key = this.string();
      const quotedKey = this.canonical;
      this.skipWs();
      if (s.charCodeAt(this.i) !== 0x3a) this.fail("expected ':'");
      this.i++;
      this.skipWs();
      if (depth === 1) this.inArgs = key === "args";
      const child = this.value(depth);
      if (typeof child === "number" && this.lastNumberWasFloat) {
        if (depth === 1) {
          this.floatKeys ??= [];
          this.floatKeys.push(key);
        } else if (depth === 2 && this.inArgs) {
          this.floatArgs ??= [];
          this.floatArgs.push(key);
        }
      }
      if (depth === 1) this.inArgs = false;
      // Duplicates are found from the key order (below), not by a lookup here: with many keys the lookup of
      // each fresh key string was most of the parse. Only the omitted key needs its own check.
      if (depth === 1 && key === this.omitKey) {
        if (omitted) this.fail("duplicate key");
        omitted = true;
      }
      if (key === "__proto__") {
        // Keep "__proto__" an ordinary own key instead of a prototype switch.
        Object.defineProperty(value, key, { value: child, enumerable: true, writable: true, configurable: true });
      } else {
        value[key] = child;
      }
      if (!(depth === 1 && key === this.omitKey)) {
        const member = `${quotedKey}:${this.canonical}`;
        const previous = keys[keys.length - 1];
        if (sorted && previous !== undefined) {
          // Arriving sorted, a repeated key can only follow itself.
          const order = previous === key ? 0 : compareCodePoints(previous, key);
          if (order === 0) this.fail("duplicate key");
          if (order > 0) sorted = false;
        }
        if (sorted) out += previous === undefined ? member : `,${member}`;
        keys.push(key);
        members.push(member);
      }
      if (!this.more(0x7d, "expected ',' or '}'")) break;
    }
    if (sorted) {
      this.canonical = `${out}}`;
      return value;
    }
    const order = keys.map((_, index) => index);
    // Without a unit from U+D800 up, UTF-16 order is code-point order: the engine's own compare will do,
    // many times faster than compareCodePoints over 100k keys.
    const native = !keys.some((key) => ABOVE_D800.test(key));
    order.sort(
      native
        ? (a, b) => ((keys[a] as string) < (keys[b] as string) ? -1 : 1)
        : (a, b) => compareCodePoints(keys[a] as string, keys[b] as string),
    );
    // Sorted, a repeated key sits next to itself.
    for (let k = 1; k < order.length; k++) {
      if (keys[order[k] as number] === keys[order[k - 1] as number]) this.fail("duplicate key");
    }
    this.canonical = `{${order.map((index) => members[index]).join(",")}}`;
    return value;
  }

  private array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail("nesting too deep");
    const s = this.s;
    this.i++;
    const value: JsonValue[] = [];
    this.skipWs();
    if (s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      this.canonical = "[]";
      return value;
    }
    // Joined once at the end: a long array of small elements costs one copy, not a rope of them.
    const parts: string[] = [];
    for (;;) {
      value.push(this.value(depth));
      parts.push(this.canonical);
      if (!this.more(0x5d, "expected ',' or ']'")) break;
    }
    this.canonical = `[${parts.join(",")}]`;
    return value;
  }

  /** After a member or element: true at `,` (another follows), false at the closing bracket; else it fails. */
  private more(close: number, expected: string): boolean {
    this.skipWs();
    const c = this.s.charCodeAt(this.i);
    if (c === 0x2c) {
      this.i++;
      this.skipWs();
      return true;
    }
    if (c === close) {
      this.i++;
      return false;
    }
    return this.fail(expected);
  }

  private string(): string {
    const s = this.s;
    const open = this.i;
    let i = open + 1;
    // Fast path: plain printable ASCII up to the closing quote is its own canonical text.
    for (;;) {
      const c = s.charCodeAt(i);
      if (c < 128 && VERBATIM[c] === 1) {
        i++;
        continue;
      }
      if (c === 0x22) {
        this.i = i + 1;
        this.canonical = s.slice(open, i + 1);
        return s.slice(open + 1, i);
      }
      break;
    }
    return this.escapedString(open, i);
  }

  // The slow path: escapes, control characters, non-ASCII text.
  private escapedString(open: number, from: number): string {
    const s = this.s;
    let out = s.slice(open + 1, from);
    let i = from;
    let start = i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        out += s.slice(start, i);
        const e = s.charCodeAt(i + 1);
        const short = SHORT_ESCAPES.get(e);
        if (short !== undefined) {
          out += short;
          i += 2;
        } else if (e === 0x75) {
          const hex = s.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.failAt(i, "invalid \\u escape");
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 6;
        } else {
          this.failAt(i, "invalid escape");
        }
        start = i;
        continue;
      }
      // charCodeAt past the end is NaN, which no comparison catches: test for the end explicitly.
      if (i >= s.length) this.failAt(i, "unterminated string");
      if (c < 0x20) this.failAt(i, "control character in string");
      i++;
    }
    out += s.slice(start, i);
    this.i = i + 1;
    // Lone surrogates (escaped, or present in a JS string input) are refused.
    if (!out.isWellFormed()) this.fail("lone surrogate in string");
    this.canonical = quoteString(out);
    return out;
  }

  private number(): JsonValue {
    const s = this.s;
    const start = this.i;
    if (!scanNumber(s, start, this.maxNumberLength)) this.failAt(scanned.errorAt, scanned.error);
    const i = scanned.end;
    const isFloat = scanned.fractionEnd !== scanned.intEnd || scanned.exponent;
    const lexeme = s.slice(start, i);
    this.i = i;
    this.lastNumberWasFloat = isFloat;
    if (isFloat) {
      const n = Number(lexeme);
      if (!Number.isFinite(n)) this.failAt(start, "number overflows");
      this.canonical = formatPythonFloat(n);
      return n;
    }
    // Integers: exact at any size. Python prints `-0` as `0`.
    const digits = lexeme.length - (lexeme.charCodeAt(0) === 0x2d ? 1 : 0);
    if (digits <= 15) {
      const n = Number(lexeme);
      this.canonical = n === 0 ? "0" : lexeme;
      return n === 0 ? 0 : n;
    }
    const big = BigInt(lexeme);
    this.canonical = big.toString();
    return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
  }
}

/** Where the parts of the number {@link scanNumber} last read end; one object, reused, so no number allocates. */
const scanned = { end: 0, intEnd: 0, fractionEnd: 0, exponent: false, errorAt: 0, error: "" };

/**
 * Reads the JSON number lexeme at `start` (one grammar for the lossless parser and the canonical fast path):
 * true with its parts in {@link scanned}, or false with the error and where it is. Digits are read no further
 * than one past `maxLength`: a megabyte of them is refused at once.
 */
function scanNumber(s: string, start: number, maxLength: number): boolean {
  let i = start;
  const stop = start + maxLength + 1;
  if (s.charCodeAt(i) === 0x2d) i++;
  const first = s.charCodeAt(i);
  if (first === 0x30) {
    i++;
  } else if (first >= 0x31 && first <= 0x39) {
    while (i < stop && isDigit(s.charCodeAt(i))) i++;
    if (i - start > maxLength) return scanFailed(start, "number too long");
  } else {
    return scanFailed(i, "invalid number");
  }
  scanned.intEnd = i;
  if (s.charCodeAt(i) === 0x2e) {
    i++;
    if (!isDigit(s.charCodeAt(i))) return scanFailed(i, "invalid number");
    while (i < stop && isDigit(s.charCodeAt(i))) i++;
    if (i - start > maxLength) return scanFailed(start, "number too long");
  }
  scanned.fractionEnd = i;
  const e = s.charCodeAt(i);
  scanned.exponent = e === 0x65 || e === 0x45;
  if (scanned.exponent) {
    i++;
    const sign = s.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i++;
    if (!isDigit(s.charCodeAt(i))) return scanFailed(i, "invalid number");
    while (i < stop && isDigit(s.charCodeAt(i))) i++;
  }
  if (i - start > maxLength) return scanFailed(start, "number too long");
  scanned.end = i;
  return true;
}

function scanFailed(at: number, error: string): false {
  scanned.errorAt = at;
  scanned.error = error;
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * The fast path for text a canonical signer wrote (every smcp, Python or seed
 * client does): one scan proves the text is its own canonical form (no
 * whitespace, keys strictly ascending, every string and integer written as
 * `canonicalize` writes it, within the limits), so `canonical` is the text
 * itself less the omitted member, and the value is V8's `JSON.parse` of it,
 * which for such text is the value the full parser builds. A float written
 * other than as Python's repr (`1E-2`) names the same double either way, and a
 * string value holding DEL or non-ASCII text as it is is the same string, so
 * each is written again in place and the scan goes on. Anything else
 * (whitespace inside, an unsorted, escaped or non-ASCII key, a lone surrogate,
 * a long integer, -0, a non-canonical escape, any error) returns undefined and
 * the full parser decides, so errors and edge cases keep exactly one
 * implementation. Same results as the full parser (test/fuzz-canonical-fast.test.ts).
 */
export function parseCanonical(
  s: string,
  maxDepth: number,
  maxNumberLength: number,
  omitKey: string | undefined,
  maxMembers: number,
  plainAscii = false,
): ParsedJson | undefined {
  try {
    return scanCanonical(s, maxDepth, maxNumberLength, omitKey, maxMembers, plainAscii);
  } catch {
    // The fast path only ever gives up: a sticky regex over a run of millions of elements can exhaust V8's
    // backtrack stack (RangeError, from about 7 MB), and the full parser then decides (regression test).
    return undefined;
  } finally {
    // A hostile body may have grown the scratch bytes; past a few megabytes they are not kept.
    if (patchScratch.length > SCRATCH_KEPT) patchScratch = Buffer.allocUnsafeSlow(4096);
    if (spliceScratch.length > SCRATCH_KEPT) spliceScratch = Buffer.allocUnsafeSlow(4096);
    if (patchIndex.length > SCRATCH_KEPT / 4) patchIndex = new Int32Array(1024);
  }
}

function scanCanonical(
  s: string,
  maxDepth: number,
  maxNumberLength: number,
  omitKey: string | undefined,
  maxMembers: number,
  plainAscii: boolean,
): ParsedJson | undefined {
  // Whitespace around the document is no part of its canonical text (found by a native regex: a megabyte of it
  // costs the character loop several milliseconds).
  let first = 0;
  if (isWs(s.charCodeAt(0))) {
    LEADING_WS.lastIndex = 0;
    LEADING_WS.test(s);
    first = LEADING_WS.lastIndex;
  }
  if (s.charCodeAt(first) !== 0x7b) return undefined;
  const scan = new CanonicalScan(s, maxDepth, maxNumberLength, omitKey, maxMembers);
  scan.i = first;
  if (plainAscii) scan.nextRaw = s.length;
  if (!scan.object(1)) return undefined;
  const last = scan.i;
  if (last !== s.length) {
    TRAILING_WS.lastIndex = last;
    if (!TRAILING_WS.test(s)) return undefined;
  }
  // The member left out goes with one of its commas: the one before it, else the one after it (if any).
  let cutStart = scan.omitStart;
  let cutEnd = scan.omitEnd;
  if (cutStart >= 0) {
    if (s.charCodeAt(cutStart - 1) === 0x2c) cutStart--;
    else if (s.charCodeAt(cutEnd) === 0x2c) cutEnd++;
  }
  const canonical =
    scan.patchCount > 0
      ? splice(s, first, last, cutStart, cutEnd, scan)
      : cutStart >= 0
        ? s.slice(first, cutStart) + s.slice(cutEnd, last)
        : first === 0 && last === s.length
          ? s
          : s.slice(first, last);
  let value: JsonValue;
  try {
    value = JSON.parse(s) as JsonValue;
  } catch {
    return undefined;
  }
  const parsed: ParsedJson = { value, canonical };
  if (scan.floatKeys) parsed.floatKeys = scan.floatKeys;
  if (scan.floatArgs) parsed.floatArgs = scan.floatArgs;
  return parsed;
}

/**
 * Bytes reused from one parse to the next (a parse is synchronous), for the patches' texts and the patched
 * canonical text: fresh megabytes cost more in page faults than the copying itself (measured), and a string or
 * an array entry per patch more in garbage collection. Dropped when a parse grew one past {@link SCRATCH_KEPT}.
 */
let patchScratch: Buffer = Buffer.allocUnsafeSlow(4096);
let spliceScratch: Buffer = Buffer.allocUnsafeSlow(4096);
let patchIndex = new Int32Array(1024);
const SCRATCH_KEPT = 8 * 1024 * 1024;

/** A buffer of at least `size` bytes with the first `keep` bytes of `buffer`: `buffer` itself while it fits. */
function atLeast(buffer: Buffer, size: number, keep: number): Buffer {
  if (size <= buffer.length) return buffer;
  const grown = Buffer.allocUnsafeSlow(Math.max(size, buffer.length * 2));
  buffer.copy(grown, 0, 0, keep);
  return grown;
}

/** Copies `text` (ASCII) into `into` at `at`; returns the end. Short texts by hand: the native call costs more. */
function writeAscii(into: Buffer, at: number, text: string): number {
  if (text.length > 32) return at + into.write(text, at, "latin1");
  for (let k = 0; k < text.length; k++) into[at + k] = text.charCodeAt(k);
  return at + text.length;
}

/**
 * The text in [first, last) with [cutStart, cutEnd) left out (none if cutStart < 0) and each of the scan's
 * patches written in place of its lexeme (patches inside the cut go with it), built in one byte buffer: the
 * text is ASCII here.
 */
function splice(s: string, first: number, last: number, cutStart: number, cutEnd: number, scan: CanonicalScan): string {
  const patches = patchIndex;
  const texts = patchScratch;
  spliceScratch = atLeast(spliceScratch, last - first + Math.max(0, scan.patchGrowth), 0);
  const out = spliceScratch;
  let n = 0;
  let at = first;
  let from = 0;
  const copy = (to: number) => {
    if (to - at > 32) n += out.write(s.slice(at, to), n, "latin1");
    else for (let k = at; k < to; k++) out[n++] = s.charCodeAt(k);
  };
  for (let k = 0; k < scan.patchCount; k += 3) {
    const start = patches[k] as number;
    const end = patches[k + 1] as number;
    const to = from + (patches[k + 2] as number);
    if (start >= cutStart && end <= cutEnd) {
      from = to;
      continue;
    }
    if (cutStart >= at && cutStart < start) {
      copy(cutStart);
      at = cutEnd;
    }
    copy(start);
    if (to - from > 32) n += texts.copy(out, n, from, to);
    else for (let b = from; b < to; b++) out[n++] = texts[b] as number;
    at = end;
    from = to;
  }
  if (cutStart >= at) {
    copy(cutStart);
    at = cutEnd;
  }
  copy(last);
  return out.toString("latin1", 0, n);
}

const LEADING_WS = /[ \t\n\r]*/y;
const TRAILING_WS = /[ \t\n\r]*$/y;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Lowercase hex digit value, -1 for anything else (uppercase hex is not canonical). */
const LOWER_HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 16; c++) LOWER_HEX["0123456789abcdef".charCodeAt(c)] = c;
/** The short escapes canonical text uses (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`), by the letter after the backslash. */
const CANONICAL_SHORT = new Uint8Array(128);
for (const letter of '"\\nrtbf') CANONICAL_SHORT[letter.charCodeAt(0)] = 1;

/** The scan of {@link parseCanonical}: each method returns false as soon as the text is not canonical. */
class CanonicalScan {
  i = 0;
  omitStart = -1;
  omitEnd = -1;
  floatKeys: string[] | undefined;
  floatArgs: string[] | undefined;
  /**
   * Patches: floats not written as Python's repr, strings holding DEL or non-ASCII as is. Start, end and the
   * length of the canonical text of each, in order, in `patchIndex` (numbers `patchCount`), the texts one after
   * another in `patchScratch` (bytes `patchBytesUsed`); see {@link splice}.
   */
  patchCount = 0;
  patchBytesUsed = 0;
  /** How much longer the patched text is than the lexemes it replaces (negative if shorter). */
  patchGrowth = 0;
  // Set by number(): whether the lexeme just read was a float.
  private lastFloat = false;
  // Set by string(): whether the string just read held an escape, and whether it held DEL or non-ASCII as is.
  private escaped = false;
  private raw = false;
  // True while the value of the top-level `args` member is being scanned.
  private inArgs = false;
  /**
   * Where the next backslash and the next DEL or non-ASCII unit are (the text's length if none; stale once a
   * string opens past them): a string that ends before both is plain, found by two native searches.
   */
  private nextBackslash = -1;
  nextRaw = -1;

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
    private readonly maxNumberLength: number,
    private readonly omitKey: string | undefined,
    private readonly maxMembers: number,
  ) {}

  private value(depth: number): boolean {
    const s = this.s;
    const c = s.charCodeAt(this.i);
    this.lastFloat = false;
    switch (c) {
      case 0x7b:
        return this.object(depth + 1);
      case 0x5b:
        return this.array(depth + 1);
      case 0x22:
        return this.stringValue();
      case 0x74:
        return this.word("true");
      case 0x66:
        return this.word("false");
      case 0x6e:
        return this.word("null");
      default:
        return this.number();
    }
  }

  private word(w: string): boolean {
    if (!this.s.startsWith(w, this.i)) return false;
    this.i += w.length;
    return true;
  }

  /** At `{`, with the object's depth (the top-level object is depth 1). */
  object(depth: number): boolean {
    if (depth > this.maxDepth) return false;
    const s = this.s;
    this.i++;
    if (s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return true;
    }
    let prevStart = -1;
    let prevEnd = -1;
    const omitKey = depth === 1 ? this.omitKey : undefined;
    for (let count = 1; ; count++) {
      if (count > this.maxMembers) return false;
      const keyStart = this.i + 1;
      if (s.charCodeAt(this.i) !== 0x22 || !this.string() || this.escaped || this.raw) return false;
      const keyEnd = this.i - 1;
      // Strictly ascending (so no duplicates): the keys are ASCII here, where UTF-16 order is code-point order.
      if (prevStart >= 0 && !ascending(s, prevStart, prevEnd, keyStart, keyEnd)) return false;
      prevStart = keyStart;
      prevEnd = keyEnd;
      if (s.charCodeAt(this.i) !== 0x3a) return false;
      this.i++;
      if (depth === 1) this.inArgs = keyEnd - keyStart === 4 && s.startsWith("args", keyStart);
      if (!this.value(depth)) return false;
      if (depth === 1) this.inArgs = false;
      if (this.lastFloat) {
        if (depth === 1) {
          this.floatKeys ??= [];
          this.floatKeys.push(s.slice(keyStart, keyEnd));
        } else if (depth === 2 && this.inArgs) {
          this.floatArgs ??= [];
          this.floatArgs.push(s.slice(keyStart, keyEnd));
        }
      }
      if (omitKey !== undefined && keyEnd - keyStart === omitKey.length && s.startsWith(omitKey, keyStart)) {
        this.omitStart = keyStart - 1;
        this.omitEnd = this.i;
      }
      const c = s.charCodeAt(this.i);
      this.i++;
      if (c === 0x2c) continue;
      if (c === 0x7d) {
        this.lastFloat = false;
        return true;
      }
      return false;
    }
  }

  private array(depth: number): boolean {
    if (depth > this.maxDepth) return false;
    const s = this.s;
    this.i++;
    if (s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return true;
    }
    // Runs of plainly canonical numbers (a batch of them is the common long array) are passed by one native
    // regex; the run stops being tried once it finds none.
    let runs = this.maxNumberLength >= NUMBER_RUN_LONGEST;
    for (;;) {
      if (runs) {
        const c = s.charCodeAt(this.i);
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          NUMBER_RUN.lastIndex = this.i;
          NUMBER_RUN.test(s);
          runs = NUMBER_RUN.lastIndex > this.i;
          this.i = NUMBER_RUN.lastIndex;
        }
      }
      if (!this.value(depth)) return false;
      const c = s.charCodeAt(this.i);
      this.i++;
      if (c === 0x2c) continue;
      if (c === 0x5d) {
        this.lastFloat = false;
        return true;
      }
      return false;
    }
  }

  /**
   * At `"`: printable ASCII and escapes exactly as `quoteString` writes them, no lone surrogate escape; DEL and
   * non-ASCII as they are set `raw` (a key refuses them, a value is written again).
   */
  private string(): boolean {
    const s = this.s;
    // A short string (a key, an id) by hand: a few characters cost less than a native call.
    let i = this.i + 1;
    const byHand = i + SHORT_STRING;
    while (i < byHand) {
      const c = s.charCodeAt(i);
      if (c < 128 && VERBATIM[c] === 1) i++;
      else break;
    }
    if (s.charCodeAt(i) === 0x22) {
      this.i = i + 1;
      this.escaped = false;
      this.raw = false;
      return true;
    }
    if (i === byHand || s.charCodeAt(i) !== 0x5c) {
      // A long one, or one holding DEL, non-ASCII or a control character: its closing quote, unless an escape
      // comes first, by native searches. A raw control character is not looked for: V8's JSON.parse, which every
      // accepted text goes through, refuses it, and the full parser then decides.
      const close = s.indexOf('"', i);
      if (close < 0) return false;
      if (this.nextBackslash < i) {
        const at = s.indexOf("\\", i);
        this.nextBackslash = at < 0 ? s.length : at;
      }
      if (close < this.nextBackslash) {
        if (this.nextRaw < i) {
          RAW_UNIT.lastIndex = i;
          this.nextRaw = RAW_UNIT.test(s) ? RAW_UNIT.lastIndex - 1 : s.length;
        }
        this.i = close + 1;
        this.escaped = false;
        this.raw = this.nextRaw < close;
        return true;
      }
    }
    let escaped = false;
    let raw = false;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c < 128 && VERBATIM[c] === 1) {
        i++;
        continue;
      }
      if (c === 0x22) break;
      if (c >= 0x7f) {
        // DEL and non-ASCII, which canonical text escapes: the string is written again (see stringValue).
        raw = true;
        i++;
        continue;
      }
      if (c !== 0x5c) return false; // control characters, the end of the text
      escaped = true;
      // A run of canonical escapes and printable text at once, natively; what it stops at is checked below.
      ESCAPE_RUN.lastIndex = i;
      ESCAPE_RUN.test(s);
      if (ESCAPE_RUN.lastIndex > i) {
        i = ESCAPE_RUN.lastIndex;
        continue;
      }
      const e = s.charCodeAt(i + 1);
      if (e < 128 && CANONICAL_SHORT[e] === 1) {
        i += 2;
        continue;
      }
      if (e !== 0x75) return false; // \/ and anything else
      let code = 0;
      for (let k = 2; k < 6; k++) {
        const h = s.charCodeAt(i + k);
        const d = h < 128 ? (LOWER_HEX[h] as number) : -1;
        if (d < 0) return false;
        code = code * 16 + d;
      }
      // \u is canonical only for what has no other form: control characters without a short escape, DEL, and
      // non-ASCII.
      if ((code >= 0x20 && code < 0x7f) || (code < 0x60 && SHORT_LETTER_OF[code] === 1)) return false;
      if (code >= 0xd800 && code <= 0xdfff) {
        // An astral character is written as its UTF-16 pair, each half escaped; a lone half is refused, by the full parser.
        if (code >= 0xdc00 || s.charCodeAt(i + 6) !== 0x5c || s.charCodeAt(i + 7) !== 0x75) return false;
        let low = 0;
        for (let k = 8; k < 12; k++) {
          const h = s.charCodeAt(i + k);
          const d = h < 128 ? (LOWER_HEX[h] as number) : -1;
          if (d < 0) return false;
          low = low * 16 + d;
        }
        if (low < 0xdc00 || low > 0xdfff) return false;
        i += 6;
      }
      i += 6;
    }
    this.i = i + 1;
    this.escaped = escaped;
    this.raw = raw;
    return true;
  }

  /**
   * A string value. One holding DEL or non-ASCII text as it is is the same string either way, so its canonical
   * text (escaped) is written in place and the scan goes on; a raw lone surrogate (only a JS string holds one,
   * and it could pair with an escaped half) is left to the full parser, which refuses it.
   */
  private stringValue(): boolean {
    const start = this.i;
    if (!this.string()) return false;
    if (!this.raw) return true;
    const s = this.s;
    const content = s.slice(start + 1, this.i - 1);
    // A lone surrogate, or a string whose canonical text would not fit the patch index (hundreds of MB): the
    // full parser decides.
    if (!content.isWellFormed() || content.length > MAX_PATCHED_STRING) return false;
    // The escapes the scan let through are canonical ones, which JSON.parse reads as the full parser does.
    const decoded = this.escaped ? (JSON.parse(s.slice(start, this.i)) as string) : content;
    // Quoted straight into the patch bytes: a megabyte of emoji is 6 MB of escapes, which as a string of its
    // own cost as much again.
    const used = this.patchBytesUsed;
    patchScratch = atLeast(patchScratch, used + decoded.length * 6 + 2, used);
    const end = quoteInto(decoded, patchScratch, used);
    this.record(start, this.i, end - used);
    this.patchBytesUsed = end;
    return true;
  }

  /** Patches [start, end) with `text` (ASCII). */
  private patch(start: number, end: number, text: string): void {
    patchScratch = atLeast(patchScratch, this.patchBytesUsed + text.length, this.patchBytesUsed);
    this.patchBytesUsed = writeAscii(patchScratch, this.patchBytesUsed, text);
    this.record(start, end, text.length);
  }

  /** Records a patch of [start, end) whose text, `length` bytes, was just written to the patch bytes. */
  private record(start: number, end: number, length: number): void {
    const at = this.patchCount;
    if (at + 3 > patchIndex.length) {
      const grown = new Int32Array(patchIndex.length * 2);
      grown.set(patchIndex.subarray(0, at));
      patchIndex = grown;
    }
    patchIndex[at] = start;
    patchIndex[at + 1] = end;
    patchIndex[at + 2] = length;
    this.patchCount = at + 3;
    this.patchGrowth += length - (end - start);
  }

  /**
   * An integer as canonical text writes it (at most 15 digits, not -0), or any finite float, patched to Python's
   * repr unless written so.
   */
  private number(): boolean {
    const s = this.s;
    const start = this.i;
    if (!scanNumber(s, start, this.maxNumberLength)) return false;
    const { intEnd, fractionEnd, exponent, end: i } = scanned;
    const isFloat = fractionEnd !== intEnd || exponent;
    const first = s.charCodeAt(s.charCodeAt(start) === 0x2d ? start + 1 : start);
    let quick = false;
    if (fractionEnd !== intEnd && !exponent) {
      const fraction = intEnd + 1;
      // Most floats are plainly canonical: positional, at most 15 significant digits (so no shorter digits
      // round-trip to the same double, DBL_DIG), no trailing zero but in "X.0", and from 1e-4 up (Python's
      // repr is positional in [1e-4, 1e16)). Anything else gets the exact check below.
      const last = s.charCodeAt(fractionEnd - 1);
      if (last !== 0x30 || fractionEnd - fraction === 1) {
        let significant: number;
        if (first === 0x30) {
          let zeros = fraction;
          while (s.charCodeAt(zeros) === 0x30) zeros++;
          significant = zeros === fractionEnd ? 1 : fractionEnd - zeros;
          quick = zeros === fractionEnd || zeros - fraction <= 3;
        } else {
          significant = intEnd - (first === s.charCodeAt(start) ? start : start + 1) + (fractionEnd - fraction);
          quick = true;
        }
        quick &&= significant <= 15;
      }
    } else if (exponent) {
      quick = canonicalExponentForm(s, start, intEnd, fractionEnd, i);
    }
    const length = i - start;
    this.i = i;
    if (!isFloat) {
      const digits = length - (s.charCodeAt(start) === 0x2d ? 1 : 0);
      // -0 is written 0; longer integers are exact only through the full parser's BigInt.
      return digits <= 15 && !(digits === 1 && first === 0x30 && length === 2);
    }
    if (quick) {
      this.lastFloat = true;
      return true;
    }
    // Any other float is the double it names (V8's JSON.parse reads it as the full parser's Number does), written
    // as Python's repr: the canonical text gets that in place of the lexeme.
    this.lastFloat = true;
    // Written straight into the patch bytes (no string per float), and kept only if it differs from the lexeme.
    const used = this.patchBytesUsed;
    patchScratch = atLeast(patchScratch, used + MAX_REPR, used);
    const written = reprInto(s, start, scanned, patchScratch, used);
    if (written >= 0) {
      if (written - used === length) {
        let k = 0;
        while (k < length && patchScratch[used + k] === s.charCodeAt(start + k)) k++;
        if (k === length) return true;
      }
      this.patchBytesUsed = written;
      this.record(start, i, written - used);
      return true;
    }
    const n = Number(s.slice(start, i));
    if (!Number.isFinite(n)) return false;
    const text = formatPythonFloat(n);
    if (text.length !== length || !s.startsWith(text, start)) this.patch(start, i, text);
    return true;
  }
}

/**
 * Whether the float lexeme at [start, end), with an exponent, is plainly Python's repr: one non-zero digit
 * before the point, a fraction (if any) without a trailing zero, at most 15 significant digits (so it is
 * the shortest form of its double, DBL_DIG), `e`, a sign, an exponent of two digits or more without a
 * leading zero past two, and that exponent one Python writes in this form (below -4 or from 16), within
 * the normal doubles (-307..307: no subnormal's lost digits, no overflow). Anything else gets the exact
 * check, as before.
 */
function canonicalExponentForm(s: string, start: number, intEnd: number, fractionEnd: number, end: number): boolean {
  const digitStart = s.charCodeAt(start) === 0x2d ? start + 1 : start;
  if (intEnd - digitStart !== 1 || s.charCodeAt(digitStart) === 0x30) return false;
  if (fractionEnd !== intEnd) {
    // "1.0e+16" is not Python's ("1e+16"), nor any trailing zero.
    if (s.charCodeAt(fractionEnd - 1) === 0x30) return false;
    if (fractionEnd - (intEnd + 1) > 14) return false;
  }
  if (s.charCodeAt(fractionEnd) !== 0x65) return false;
  const sign = s.charCodeAt(fractionEnd + 1);
  if (sign !== 0x2b && sign !== 0x2d) return false;
  const digits = end - (fractionEnd + 2);
  if (digits < 2 || digits > 3 || (digits === 3 && s.charCodeAt(fractionEnd + 2) === 0x30)) return false;
  let exponent = 0;
  for (let k = fractionEnd + 2; k < end; k++) exponent = exponent * 10 + (s.charCodeAt(k) - 0x30);
  if (sign === 0x2d) exponent = -exponent;
  return (exponent < -4 || exponent >= 16) && exponent >= -307 && exponent <= 307;
}

/** How many characters of a string the scan reads by hand before it searches natively for the end. */
const SHORT_STRING = 16;

/**
 * Printable ASCII but `"` and `\`, and escapes exactly as canonical text writes them: the short ones, `\u` for a
 * control character without a short form, DEL, and any non-ASCII unit, a surrogate only as a high-low pair. The
 * same rules as the character checks in {@link CanonicalScan}'s string(), which decide wherever this stops.
 */
const ESCAPE_RUN =
  /(?:[ !#-[\]-~]+|\\(?:["\\bfnrt]|u(?:00(?:0[0-7bef]|1[0-9a-f]|7f|[89a-f][0-9a-f])|0[1-9a-f][0-9a-f]{2}|[1-9a-c][0-9a-f]{3}|d[0-7][0-9a-f]{2}|d[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|[ef][0-9a-f]{3})))*/y;

/** DEL or any non-ASCII unit: what canonical text writes as an escape (global: searched from a position). */
const RAW_UNIT = /[\x7f-\uffff]/g;

/**
 * A run of array elements, each a number written as canonical text writes it and followed by a comma: an
 * integer of at most 15 digits (not -0), or a positional float that {@link CanonicalScan}'s number() takes as
 * it is (no trailing zero but in "X.0", at most 15 significant digits, at most three zeros after "0."), in at
 * most {@link NUMBER_RUN_LONGEST} characters. Anything else ends the run, and the element scan goes on there.
 */
const NUMBER_RUN =
  /(?:(?:-?(?:[1-9][0-9]{0,14}|(?=[0-9.]{3,16},)[1-9][0-9]*\.(?:0|[0-9]*[1-9])|0\.(?:0|0{0,3}(?=[0-9]{1,15},)[1-9](?:[0-9]*[1-9])?))|0),)*/y;
/** The longest lexeme {@link NUMBER_RUN} passes: a limit on number length below it turns the runs off. */
const NUMBER_RUN_LONGEST = 17;

/** The longest string value written again in place: its canonical text (6 bytes a unit at most) fits an int32. */
const MAX_PATCHED_STRING = 0x0fffffff;

/** Room for the longest text {@link reprInto} writes, 22 bytes ("-1.23456789012345e-307"). */
const MAX_REPR = 24;

/**
 * Writes Python's repr of the float lexeme at `start`, whose `parts` {@link scanNumber} found, into `out`
 * from `at`, from the lexeme's own digits, and returns where it ends: with at most 15 significant digits and a
 * decimal exponent within the normal doubles (-307..307), those digits less leading and trailing zeros are the
 * shortest that name its double (DBL_DIG, as in {@link canonicalExponentForm}). -1 for anything else (more
 * digits, zero, the edges of the range), which formatPythonFloat writes from the double.
 */
function reprInto(s: string, start: number, parts: typeof scanned, out: Uint8Array, at: number): number {
  const { intEnd, fractionEnd, end } = parts;
  const negative = s.charCodeAt(start) === 0x2d;
  const digitStart = negative ? start + 1 : start;
  let exponent = 0;
  if (fractionEnd < end) {
    // e or E, an optional sign, digits; more than four (past the range, or padded with zeros) go the slow way.
    let k = fractionEnd + 1;
    const sign = s.charCodeAt(k);
    if (sign === 0x2b || sign === 0x2d) k++;
    if (end - k > 4) return -1;
    for (; k < end; k++) exponent = exponent * 10 + (s.charCodeAt(k) - 0x30);
    if (sign === 0x2d) exponent = -exponent;
  }
  // The mantissa's digits, numbered 0.. across the point: digit m is at m below intLength, else one further on.
  const intLength = intEnd - digitStart;
  const mantissaLength = intLength + (fractionEnd > intEnd ? fractionEnd - intEnd - 1 : 0);
  let lead = 0;
  while (lead < mantissaLength && digitAt(s, digitStart, intLength, lead) === 0x30) lead++;
  if (lead === mantissaLength) return -1;
  let trail = mantissaLength;
  while (digitAt(s, digitStart, intLength, trail - 1) === 0x30) trail--;
  const count = trail - lead;
  if (count > 15) return -1;
  // The decimal exponent of the first significant digit.
  const e = intLength - lead - 1 + exponent;
  if (e < -307 || e > 307) return -1;
  let n = at;
  if (negative) out[n++] = 0x2d;
  if (e >= 16 || e < -4) {
    out[n++] = digitAt(s, digitStart, intLength, lead);
    if (count > 1) {
      out[n++] = 0x2e;
      for (let m = lead + 1; m < trail; m++) out[n++] = digitAt(s, digitStart, intLength, m);
    }
    out[n++] = 0x65;
    out[n++] = e < 0 ? 0x2d : 0x2b;
    const magnitude = e < 0 ? -e : e;
    if (magnitude >= 100) out[n++] = 0x30 + Math.floor(magnitude / 100);
    out[n++] = 0x30 + (Math.floor(magnitude / 10) % 10);
    out[n++] = 0x30 + (magnitude % 10);
  } else if (e < 0) {
    out[n++] = 0x30;
    out[n++] = 0x2e;
    for (let z = -1; z > e; z--) out[n++] = 0x30;
    for (let m = lead; m < trail; m++) out[n++] = digitAt(s, digitStart, intLength, m);
  } else {
    // e + 1 digits before the point (zeros past the last significant one), then the rest or "0".
    for (let d = 0; d <= e; d++) out[n++] = d < count ? digitAt(s, digitStart, intLength, lead + d) : 0x30;
    out[n++] = 0x2e;
    if (count > e + 1) for (let m = lead + e + 1; m < trail; m++) out[n++] = digitAt(s, digitStart, intLength, m);
    else out[n++] = 0x30;
  }
  return n;
}

/** Digit m of a mantissa whose point, if any, follows its first `intLength` digits (a plain function: a closure per float cost more). */
function digitAt(s: string, digitStart: number, intLength: number, m: number): number {
  return s.charCodeAt(m < intLength ? digitStart + m : digitStart + m + 1);
}

/** 1 for the code units canonical text writes as a short escape (`\b \t \n \f \r " \\`). */
const SHORT_LETTER_OF = new Uint8Array(0x60);
for (const unit of [0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x22, 0x5c]) SHORT_LETTER_OF[unit] = 1;

/** Whether the key text at [aStart, aEnd) sorts strictly before the one at [bStart, bEnd) (code units). */
function ascending(s: string, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const n = aLength < bLength ? aLength : bLength;
  for (let k = 0; k < n; k++) {
    const a = s.charCodeAt(aStart + k);
    const b = s.charCodeAt(bStart + k);
    if (a !== b) return a < b;
  }
  return aLength < bLength;
}
