/**
 * The parser's fast path (issue 22): text already in canonical form is proven
 * so by one scan, its value taken from V8's JSON.parse and its canonical
 * bytes from the text itself less the signature, with any float not written
 * as Python's repr written again in place. It must be exactly the full
 * parser: for random envelopes and documents, canonical and not (whitespace,
 * keys out of order, other escapes and number forms, mutations), both paths
 * give the same value (own keys, `__proto__` included), the same canonical
 * text, the same float keys and float arguments, or both throw.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { canonicalize, formatPythonFloat, type JsonValue, quoteString } from "../src/protocol/canonical.js";
import { JsonSyntaxError, type ParsedJson, parseCanonical, parseLossless } from "../src/protocol/parse.js";
import { anyDocument, envelopeText, floatLexeme, intLexeme, wellFormedValue } from "./fuzz/json.js";
import { mutateUnits, unitMutations } from "./fuzz/mutate.js";
import { runProperty } from "./fuzz/run.js";

type Outcome = { ok: true; parsed: ParsedJson } | { ok: false; syntax: boolean };

type Limits = { maxDepth?: number; maxMembers?: number; maxNumberLength?: number };

function outcome(text: string | Uint8Array, fastPath: boolean, limits: Limits = {}): Outcome {
  try {
    return { ok: true, parsed: parseLossless(text, { ...limits, omitTopLevelKey: "signature", fastPath }) };
  } catch (error) {
    return { ok: false, syntax: error instanceof JsonSyntaxError };
  }
}

/** Same value, key for key (own enumerable keys in order, prototypes, -0 and bigints told apart). */
function sameValue(a: unknown, b: unknown, at: string): void {
  if (typeof a !== "object" || a === null) {
    assert.ok(Object.is(a, b), `${at}: ${String(a)} vs ${String(b)}`);
    return;
  }
  assert.equal(typeof b, "object", at);
  assert.equal(Array.isArray(a), Array.isArray(b), at);
  assert.equal(Object.getPrototypeOf(a), Object.getPrototypeOf(b), `${at}: prototype`);
  const ka = Reflect.ownKeys(a);
  assert.deepEqual(ka, Reflect.ownKeys(b as object), `${at}: keys`);
  for (const k of ka) {
    if (k === "length" && Array.isArray(a)) continue;
    sameValue((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k], `${at}.${String(k)}`);
  }
}

let fastTaken = 0;

function agree(text: string, limits: Limits = {}): void {
  const shown = JSON.stringify(text).slice(0, 300);
  const slow = outcome(text, false, limits);
  const fast = outcome(text, true, limits);
  if (!slow.ok || !fast.ok) {
    assert.deepEqual(fast, slow, `${shown}: one path refused it, the other did not`);
    return;
  }
  assert.equal(fast.parsed.canonical, slow.parsed.canonical, `${shown}: canonical text`);
  assert.deepEqual(fast.parsed.floatKeys, slow.parsed.floatKeys, `${shown}: floatKeys`);
  assert.deepEqual(fast.parsed.floatArgs, slow.parsed.floatArgs, `${shown}: floatArgs`);
  sameValue(fast.parsed.value, slow.parsed.value, shown);
  if (parseCanonical(text, limits.maxDepth ?? 64, limits.maxNumberLength ?? 64, "signature", limits.maxMembers ?? 10_000))
    fastTaken++;
}

/** {@link agree} for the text's UTF-8 bytes, as a server gets them (the fast path's ASCII search is skipped for ASCII). */
function agreeBytes(text: string): void {
  const bytes = Buffer.from(text);
  const slow = outcome(bytes, false);
  const fast = outcome(bytes, true);
  if (!slow.ok || !fast.ok) {
    assert.deepEqual(fast, slow, `${JSON.stringify(text).slice(0, 300)} as bytes: one path refused it, the other did not`);
    return;
  }
  assert.equal(fast.parsed.canonical, slow.parsed.canonical, `${JSON.stringify(text).slice(0, 300)} as bytes: canonical text`);
  sameValue(fast.parsed.value, slow.parsed.value, "bytes");
}

/** Canonical text of an envelope-like object with a signature, and a few non-canonical writings of it. */
const forms = (value: JsonValue): string[] => {
  const text = canonicalize(value);
  const spaced = JSON.stringify(JSON.parse(text), null, 1);
  return [
    text,
    spaced,
    ` \n${text}\t\r `,
    text.replace(/,/, ", "),
    text.replaceAll("\\n", "\\u000a"),
    text.replace(/:1/, ":1.0"),
    text.replace(/\\ud83d\\ude00/, "\\ud83d"),
  ];
};

/** Decimal writings of doubles: every precision, fixed and shortest, positional or not (the quick float check). */
const decimalLexeme = fc
  .tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 1, max: 20 }), fc.nat(3))
  .map(([d, p, how]) => [d.toPrecision(p), d.toFixed(Math.min(p, 20)), String(d), `${Math.trunc(d)}.0`][how] as string)
  .filter((s) => /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(s) && s.length <= 64);

const argsMember = fc.oneof(
  wellFormedValue,
  decimalLexeme.map((s) => ({ lexeme: s })),
  intLexeme.filter((s) => s.length <= 64).map((s) => ({ lexeme: s })),
  floatLexeme.filter((s) => s.length <= 64 && Number.isFinite(Number(s))).map((s) => ({ lexeme: s })),
);

/** An envelope whose args hold raw number lexemes (integers, floats, long ones), keys in or out of order. */
const lexemeEnvelope = fc
  .tuple(
    fc.dictionary(fc.constantFrom("a", "b", "numbers", "x", "__proto__", "é", "1"), argsMember, { maxKeys: 4 }),
    fc.oneof(
      fc.constant("1795304232049"),
      floatLexeme.filter((s) => s.length <= 64 && Number.isFinite(Number(s))),
    ),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([args, ts, reversed, signatureFirst]) => {
    const write = (v: unknown): string =>
      v !== null && typeof v === "object" && "lexeme" in (v as object) ? (v as { lexeme: string }).lexeme : canonicalize(v);
    let members = Object.keys(args).sort();
    if (reversed) members = members.reverse();
    const argsText = `{${members.map((k) => `${JSON.stringify(k)}:${write(args[k])}`).join(",")}}`;
    const top = [
      ["args", argsText],
      ["client_id", '"c"'],
      ["nonce", '"n"'],
      ["signature", '"ab12"'],
      ["ts_ms", ts],
      ["v", '"mcp/0.1"'],
    ];
    if (signatureFirst) top.unshift(top.splice(3, 1)[0] as string[]);
    return `{${top.map(([k, v]) => `"${k}":${v}`).join(",")}}`;
  });

describe("parser fast path for canonical text (issue 22)", () => {
  it("agrees with the full parser on signed envelopes, documents and their non-canonical writings", async (t) => {
    fastTaken = 0;
    await runProperty(
      t,
      fc.array(fc.oneof(envelopeText, anyDocument), { minLength: 1, maxLength: 10 }),
      (texts) => {
        for (const text of texts) {
          agree(text);
          try {
            for (const form of forms(JSON.parse(text) as JsonValue)) agree(form);
          } catch {
            // Not JSON V8 reads (a lone surrogate escape, a duplicate key): the text alone was checked.
          }
        }
      },
      { runs: 150, seconds: 2 },
    );
    assert.ok(fastTaken > 0, "no case took the fast path");
  });

  it("agrees on envelopes with number lexemes of every shape in args and ts_ms (floatKeys, floatArgs)", async (t) => {
    await runProperty(
      t,
      fc.array(lexemeEnvelope, { minLength: 1, maxLength: 20 }),
      (texts) => {
        for (const text of texts) agree(text);
      },
      {
        runs: 200,
        seconds: 2,
      },
    );
  });

  it("agrees on mutated envelopes (flips, insertions, deletions, lone surrogates), and at tight limits", async (t) => {
    await runProperty(
      t,
      fc.array(fc.tuple(envelopeText, unitMutations, fc.integer({ min: 1, max: 4 })), { minLength: 1, maxLength: 20 }),
      (cases) => {
        for (const [text, mutations, limit] of cases) {
          agree(mutateUnits(text, mutations));
          agree(text, { maxDepth: limit, maxMembers: limit + 4 });
        }
      },
      { runs: 150, seconds: 2 },
    );
  });

  it("agrees on floats in exponent form: Python's repr of any double and near misses of it", async (t) => {
    // Python's repr of random doubles, most of them in exponent form, and writings one step off it: the
    // exponent padded or unpadded, E, no sign, a trailing zero, "1.0e", a digit changed, subnormals.
    const nearMiss = (lexeme: string, how: number, digit: number): string => {
      const m = /^(-?)(\d)(?:\.(\d+))?e([+-])(\d+)$/.exec(lexeme);
      if (!m) return lexeme;
      const [, sign, lead, fraction, expSign, exp] = m as unknown as string[];
      const mantissa = fraction ? `${lead}.${fraction}` : (lead as string);
      switch (how) {
        case 0:
          return `${sign}${mantissa}e${expSign}0${exp}`;
        case 1:
          return `${sign}${mantissa}e${expSign}${Number(exp)}`;
        case 2:
          return `${sign}${mantissa}E${expSign}${exp}`;
        case 3:
          return `${sign}${mantissa}e${expSign === "+" ? "" : "-"}${exp}`;
        case 4:
          return `${sign}${mantissa}${fraction ? "0" : ".0"}e${expSign}${exp}`;
        case 5: {
          const digits = `${lead}${fraction ?? ""}`;
          const at = digit % digits.length;
          const changed = `${digits.slice(0, at)}${(Number(digits[at]) + 1) % 10}${digits.slice(at + 1)}`;
          return `${sign}${changed[0]}${changed.length > 1 ? `.${changed.slice(1)}` : ""}e${expSign}${exp}`;
        }
        default:
          return lexeme;
      }
    };
    // Any double in exponent form, Python's way of writing one (two exponent digits at least): canonical
    // only outside [1e-4, 1e16), where Python's repr switches to this form.
    const exponentForm = (d: number): string =>
      d.toExponential().replace(/e([+-])(\d+)$/, (_, sign: string, exp: string) => `e${sign}${exp.padStart(2, "0")}`);
    const double = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.tuple(fc.integer({ min: 1, max: 9_999_999 }), fc.integer({ min: -330, max: 310 })).map(([m, e]) => Number(`${m}e${e}`)),
      // Near the switch between the forms, where the exponent is written with a leading zero (e-05 .. e-09).
      fc.tuple(fc.integer({ min: 1, max: 9_999_999 }), fc.integer({ min: -16, max: 20 })).map(([m, e]) => Number(`${m}e${e}`)),
    );
    await runProperty(
      t,
      fc.array(fc.tuple(double, fc.nat(6), fc.nat(20)), { minLength: 1, maxLength: 20 }),
      (cases) => {
        for (const [d, how, digit] of cases) {
          if (!Number.isFinite(d)) continue;
          const lexeme = formatPythonFloat(d);
          for (const written of [lexeme, nearMiss(lexeme, how, digit), exponentForm(d)]) {
            agree(`{"args":{"x":${written}},"signature":"ab","ts_ms":${written},"v":"mcp/0.1"}`);
          }
        }
      },
      { runs: 200, seconds: 2 },
    );
  });

  it("writes any float lexeme's canonical text as the full parser does, from its own digits", async (t) => {
    // Lexemes of every shape: a sign, integer digits, a fraction, an exponent (e or E, signed or not, padded),
    // often more than 15 digits or far out of range. The fast path takes every finite one, and its canonical
    // text is Python's repr of the double, as the full parser writes it.
    const digits = (min: number, max: number) => fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: max });
    const lexeme = fc
      .tuple(
        fc.boolean(),
        fc.oneof(
          fc.constant(["0"]),
          fc.tuple(fc.constantFrom(..."123456789"), digits(0, 18)).map(([a, b]) => [a, ...b]),
        ),
        fc.option(digits(1, 20), { nil: undefined }),
        fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), digits(1, 5)), { nil: undefined }),
      )
      .filter(([, , fraction, exponent]) => fraction !== undefined || exponent !== undefined)
      .map(
        ([negative, int, fraction, exponent]) =>
          `${negative ? "-" : ""}${int.join("")}${fraction ? `.${fraction.join("")}` : ""}${exponent ? `${exponent[0]}${exponent[1]}${exponent[2].join("")}` : ""}`,
      );
    await runProperty(
      t,
      fc.array(lexeme, { minLength: 1, maxLength: 30 }),
      (lexemes) => {
        for (const written of lexemes) {
          const n = Number(written);
          const fast = parseCanonical(`{"a":${written}}`, 64, 64, "signature", 10_000);
          if (!Number.isFinite(n)) {
            assert.equal(fast, undefined, written);
            continue;
          }
          assert.equal(fast?.canonical, `{"a":${formatPythonFloat(n)}}`, written);
          assert.deepEqual(fast?.floatKeys, ["a"], written);
          agree(`{"args":{"x":[${written},1E-2]},"signature":${written},"ts_ms":${written}}`);
        }
      },
      { runs: 300, seconds: 2 },
    );
  });

  it("agrees on arrays of number lexemes of every shape (the native run of plain numbers), as text and as bytes", async (t) => {
    // The run regex passes integers and plain positional floats up to a comma; each lexeme here sits next to its
    // near misses (a trailing zero, -0, 16 digits, four zeros after "0.", exponents), in every order.
    const edge = fc.constantFrom(
      "0",
      "-0",
      "0.0",
      "-0.0",
      "1.0",
      "10.0",
      "1.50",
      "1.05",
      "0.0001",
      "0.00001",
      "0.1000",
      "-0.5",
      "123456789012345",
      "1234567890123456",
      "-123456789012345",
      "123456789012345.0",
      "12345678901234.5",
      "1.23456789012345",
      "1.234567890123456",
      "0.000123456789012345",
      "0.00012345678901234",
      "1e-05",
      "1E-2",
      "00",
      "01",
    );
    const element = fc.oneof(
      edge,
      decimalLexeme,
      intLexeme.filter((s) => s.length <= 64),
      floatLexeme.filter((s) => s.length <= 64),
    );
    const array = fc.array(element, { minLength: 1, maxLength: 40 }).map((xs) => `[${xs.join(",")}]`);
    await runProperty(
      t,
      fc.array(fc.tuple(array, fc.nat(2)), { minLength: 1, maxLength: 10 }),
      (cases) => {
        for (const [written, how] of cases) {
          // The array alone, after a nested array, and followed by a string.
          const numbers = [written, `[[1],${written.slice(1)}`, `[${written},"x"]`][how] as string;
          const text = `{"args":{"numbers":${numbers}},"signature":"ab","ts_ms":1,"v":"mcp/0.1"}`;
          agree(text);
          agreeBytes(text);
          agree(text, { maxNumberLength: 16 });
        }
      },
      { runs: 300, seconds: 2 },
    );
  });

  it("takes a run of plain numbers whole and gives the values V8 reads", () => {
    const numbers = Array.from({ length: 500 }, (_, i) =>
      i % 3 === 0 ? String(i * 7 - 900) : i % 3 === 1 ? `${i}.25` : `-0.00${(i % 9) + 1}`,
    );
    const text = `{"args":{"numbers":[${numbers.join(",")}]},"signature":"ab"}`;
    const fast = parseCanonical(text, 64, 64, "signature", 10_000);
    assert.ok(fast, "a run of plain numbers took the fast path");
    assert.equal(fast.canonical, `{"args":{"numbers":[${numbers.join(",")}]}}`);
    assert.deepEqual((fast.value as { args: { numbers: number[] } }).args.numbers, numbers.map(Number));
    // One patched element in the middle of a run: written again in place, the run goes on after it.
    const patched = [...numbers.slice(0, 10), "1E-2", "-0", ...numbers.slice(10)];
    assert.equal(
      parseCanonical(`{"a":[${patched.join(",")}]}`, 64, 64, undefined, 10_000),
      undefined,
      "-0 goes to the full parser",
    );
    const once = [...numbers.slice(0, 10), "1E-2", ...numbers.slice(10)];
    assert.equal(
      parseCanonical(`{"a":[${once.join(",")}]}`, 64, 64, undefined, 10_000)?.canonical,
      `{"a":[${[...numbers.slice(0, 10), "0.01", ...numbers.slice(10)].join(",")}]}`,
    );
  });

  it("agrees on strings of escapes: canonical ones, with one written another way (case, \\u for a short or printable)", async (t) => {
    // Each unit written as canonical text writes it (printable, a short escape, or \u in lowercase), pairs kept
    // whole, then at most one of them written another way: the fast path must reach that one and refuse it.
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0x100 }),
      fc.integer({ min: 0x100, max: 0xfff }),
      fc.integer({ min: 0x1000, max: 0xffff }),
      fc.integer({ min: 0xd7f0, max: 0xe010 }),
      fc.constantFrom(0x22, 0x5c, 0x2f, 0x7f, 0x7e, 0x20, 0x1f, 0xffff),
    );
    const hex4 = (c: number) => c.toString(16).padStart(4, "0");
    const other = (c: number, how: number): string =>
      [
        `\\u${hex4(c).toUpperCase()}`,
        `\\u${hex4(c)}`,
        `\\u${hex4(c).replace(/[a-f]/, (x) => x.toUpperCase())}`,
        `\\u${hex4(c).replace(/[a-f](?=[^a-f]*$)/, (x) => x.toUpperCase())}`,
      ][how % 4] as string;
    await runProperty(
      t,
      fc.array(
        fc.tuple(
          fc.array(unit, { minLength: 1, maxLength: 12 }),
          fc.option(fc.tuple(fc.nat(11), fc.nat(3)), { nil: undefined }),
          fc.nat(40),
        ),
        { minLength: 1, maxLength: 20 },
      ),
      (cases) => {
        for (const [units, changed, lead] of cases) {
          const pieces = units.map((c) => quoteString(String.fromCharCode(c)).slice(1, -1));
          if (changed) {
            const at = changed[0] % units.length;
            pieces[at] = other(units[at] as number, changed[1]);
          }
          const text = `{"a":"${"p".repeat(lead)}${pieces.join("")}","signature":"x"}`;
          agree(text);
          agreeBytes(text);
        }
      },
      { runs: 1000, seconds: 3 },
    );
  });

  it("finds strings' ends natively without losing what the character scan refused (bytes and text)", () => {
    for (const text of [
      '{"a":"x\\ty"}', // an escape after plain text
      '{"a":"x\\"y","b":"z"}', // an escaped quote before the closing one
      '{"a":"x\ty"}', // a raw control character: V8 refuses it, so does the full parser
      '{"a":"x\u007fy"}', // DEL as it is: written again
      '{"a":"x","b":"\u00e9","c":"y"}', // non-ASCII in one string of several
      '{"a":"x"\\,"b":1}', // a backslash outside any string
      '{"a":"\\u00e9","b":"\u00e9"}',
      '{"a":"x\\u0041"}', // an escape canonical text does not use: the full parser writes "A"
      '{"a":"x\\/"}',
      '{"a":"unterminated}',
      '{"a":"x\\',
      '{"\u00e9":1}', // a non-ASCII key: not canonical
      '{"a\\n":1}', // an escaped key: not canonical
    ]) {
      // Short, and past the characters read by hand (a long plain start before what the native search must find).
      for (const form of [text, text.replaceAll(':"', `:"${"p".repeat(40)}`)]) {
        agree(form);
        agreeBytes(form);
      }
    }
    assert.equal(parseLossless(Buffer.from(`{"a":"${"p".repeat(40)}x\u007fy"}`)).canonical, `{"a":"${"p".repeat(40)}x\\u007fy"}`);
    assert.equal(parseLossless(Buffer.from('{"a":"x\u007fy"}')).canonical, '{"a":"x\\u007fy"}');
    assert.equal(parseLossless(Buffer.from('{"a":"x","b":"\u00e9","c":"y"}')).canonical, '{"a":"x","b":"\\u00e9","c":"y"}');
    assert.throws(() => parseLossless(Buffer.from('{"a":"x\ty"}')), JsonSyntaxError);
  });

  it("gives up, never throws, when a run is longer than V8's regex backtrack stack (regression, review of round 3 session 7)", () => {
    // A run of millions of escapes or numbers exhausted the sticky regexes' stack (RangeError from about 7 MB):
    // the fast path threw, so a valid body was refused. It now gives up and the full parser decides.
    for (const text of [`{"args":{"s":"${"a\\n".repeat(2_500_000)}"}}`, `{"args":{"n":[${"1,".repeat(6_000_000)}1]}}`]) {
      assert.equal(parseCanonical(text, 64, 64, "signature", 10_000), undefined);
      const parsed = parseLossless(Buffer.from(text));
      assert.equal(parsed.canonical, text);
    }
  });

  it("takes the fast path for the text a canonical signer writes, and leaves the signature out", () => {
    const text = '{"args":{"numbers":[1,2.5,-3]},"nonce":"n","signature":"ab","ts_ms":1,"v":"mcp/0.1"}';
    const fast = parseCanonical(text, 64, 64, "signature", 10_000);
    assert.ok(fast);
    assert.equal(fast.canonical, '{"args":{"numbers":[1,2.5,-3]},"nonce":"n","ts_ms":1,"v":"mcp/0.1"}');
    assert.equal(parseCanonical('{"signature":"ab"}', 64, 64, "signature", 10_000)?.canonical, "{}");
    assert.equal(parseCanonical('{"signature":"ab","z":1}', 64, 64, "signature", 10_000)?.canonical, '{"z":1}');
    // Floats in exponent form as Python writes them (from 1e+16, below 1e-4).
    assert.equal(
      parseCanonical('{"a":[1e+16,-1.5e-07,2.5e+100]}', 64, 64, "signature", 10_000)?.canonical,
      '{"a":[1e+16,-1.5e-07,2.5e+100]}',
    );
    assert.equal(parseCanonical(' {"a":"\\ud83d\\ude00"}\n', 64, 64, "signature", 10_000)?.canonical, '{"a":"\\ud83d\\ude00"}');
    // Floats written any other way are written again as Python's repr, in place, and still take the fast path:
    // the member left out goes whole, patches before it, after it and inside it.
    for (const [text, canonical] of [
      ['{"a":[1E-2,5E-1,-25E-1,1E0]}', '{"a":[0.01,0.5,-2.5,1.0]}'],
      ['{"a":1E5}', '{"a":100000.0}'],
      ['{"a":1e16}', '{"a":1e+16}'],
      ['{"a":1.0e+16}', '{"a":1e+16}'],
      ['{"a":1e+016}', '{"a":1e+16}'],
      ['{"a":1e-5}', '{"a":1e-05}'],
      ['{"a":1e+15}', '{"a":1000000000000000.0}'],
      ['{"a":0.000100}', '{"a":0.0001}'],
      ['{"a":4e-324}', '{"a":5e-324}'],
      ['{"a":6e-324}', '{"a":5e-324}'],
      ['{"a":1E-2,"signature":"x","z":2E1}', '{"a":0.01,"z":20.0}'],
      ['{"a":1E-2,"signature":3E1}', '{"a":0.01}'],
      ['{"signature":3E1,"z":2E1}', '{"z":20.0}'],
      // Strings holding DEL or non-ASCII as they are: written again with those escaped.
      ['{"a":"caf\u00e9 \ud83d\ude00","b":"\x7f"}', '{"a":"caf\\u00e9 \\ud83d\\ude00","b":"\\u007f"}'],
      ['{"a":"\u00e9\\n\\ud83d\\ude00\\"","signature":"\u00e9"}', '{"a":"\\u00e9\\n\\ud83d\\ude00\\""}'],
    ]) {
      assert.equal(parseCanonical(text as string, 64, 64, "signature", 10_000)?.canonical, canonical, text);
    }
    for (const refused of [
      '{"a":"\\ud83d"}',
      '{"a":"\\ude00\\ud83d"}',
      '{"a":"\\ud83d\\u0041"}',
      '{"a":1 }',
      '{"b":1,"a":2}',
      '{"a":1,"a":1}',
      '{"a":-0}',
      '{"\u00e9":1}',
      '{"a":"\ud83d\\ude00"}',
      '{"a":"\ude00"}',
      '{"a":1.8e+308}',
      '{"a":2e+308}',
      '{"a":"\\/"}',
      '{"a":"\\u0041"}',
    ]) {
      assert.equal(parseCanonical(refused, 64, 64, "signature", 10_000), undefined, refused);
    }
  });
});
