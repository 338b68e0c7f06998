/**
 * The lossless JSON parser (SPEC §2): reads a message's own text once and
 * returns both the JS value and the canonical text computed from the original
 * lexemes (so a signature is verified over exactly what was sent). Refuses
 * duplicate keys, NaN/Infinity, float overflow, lone surrogates, invalid
 * UTF-8, and anything past the limits below.
 */

import { isUtf8 } from "node:buffer";
import { ABOVE_D800, compareCodePoints, formatPythonFloat, type JsonObject, type JsonValue, quoteString } from "./canonical.js";

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
  const text = typeof input === "string" ? input : decodeUtf8(input);
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
    let out = "[";
    for (;;) {
      value.push(this.value(depth));
      out += value.length > 1 ? `,${this.canonical}` : this.canonical;
      if (!this.more(0x5d, "expected ',' or ']'")) break;
    }
    this.canonical = `${out}]`;
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
    let i = start;
    let isFloat = false;
    if (s.charCodeAt(i) === 0x2d) i++;
    const first = s.charCodeAt(i);
    if (first === 0x30) {
      i++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (isDigit(s.charCodeAt(i))) i++;
    } else {
      this.failAt(i, "invalid number");
    }
    if (s.charCodeAt(i) === 0x2e) {
      isFloat = true;
      i++;
      if (!isDigit(s.charCodeAt(i))) this.failAt(i, "invalid number");
      while (isDigit(s.charCodeAt(i))) i++;
    }
    const e = s.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      isFloat = true;
      i++;
      const sign = s.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!isDigit(s.charCodeAt(i))) this.failAt(i, "invalid number");
      while (isDigit(s.charCodeAt(i))) i++;
    }
    if (i - start > this.maxNumberLength) this.failAt(start, "number too long");
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

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
