import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { canonicalize, JsonSyntaxError, parseLossless } from "../src/index.js";
import { compareCodePoints, formatPythonFloat, quoteInto, quoteString } from "../src/protocol/canonical.js";
import { type Key, toKeys } from "../src/protocol/keys.js";
import { signMessage, signRequest, signResponse } from "../src/protocol/sign.js";
import { jsValue } from "./fuzz/json.js";
import { python } from "./helpers.js";

const canon = (text: string) => parseLossless(text).canonical;

describe("canonical form: fixed vectors (SPEC §2)", () => {
  it("writes floats as Python's repr", () => {
    const cases: [string, string][] = [
      ["6.0", "6.0"],
      ["1e-05", "1e-05"],
      ["0.00001", "1e-05"],
      ["1e16", "1e+16"],
      ["1.5e16", "1.5e+16"],
      ["1E21", "1e+21"],
      ["-0.0", "-0.0"],
      ["0.0001", "0.0001"],
      ["1e15", "1000000000000000.0"],
      ["123.456", "123.456"],
      ["1e-7", "1e-07"],
      ["5e-324", "5e-324"],
      ["1.7976931348623157e308", "1.7976931348623157e+308"],
      ["1e-400", "0.0"],
      ["0.1", "0.1"],
      ["100e0", "100.0"],
    ];
    for (const [text, expected] of cases) assert.equal(canon(text), expected, text);
  });

  it("keeps integers exact at any size, -0 as 0", () => {
    assert.equal(canon("9007199254740993"), "9007199254740993");
    assert.equal(canon("-123456789012345678901234567890"), "-123456789012345678901234567890");
    assert.equal(canon("-0"), "0");
    assert.equal(parseLossless("9007199254740993").value, 9007199254740993n);
    assert.equal(parseLossless("9007199254740991").value, 9007199254740991);
  });

  it("escapes like ensure_ascii and sorts keys by code point", () => {
    assert.equal(
      canon('"é\\u0000\\u001f\\u007f\\n\\t\\b\\f\\r\\"\\\\/"'),
      '"\\u00e9\\u0000\\u001f\\u007f\\n\\t\\b\\f\\r\\"\\\\/"',
    );
    assert.equal(canon('"😀"'), '"\\ud83d\\ude00"');
    // UTF-16 order would put the astral key first; code-point order puts U+FFFF first.
    assert.equal(canon('{"😀":1,"\\uffff":2}'), '{"\\uffff":2,"\\ud83d\\ude00":1}');
    assert.ok(compareCodePoints("\uffff", "😀") < 0);
    assert.ok(compareCodePoints("a", "ab") < 0);
    assert.equal(canon('{ "b" : [1, 2.50, {"z":null,"a":true}], "a": "x" }'), '{"a":"x","b":[1,2.5,{"a":true,"z":null}]}');
  });

  it("canonicalizes JS values the way a signer builds them", () => {
    assert.equal(
      canonicalize({ b: 6, a: 6.5, c: -0, d: 1e21, e: 2n ** 64n, f: [true, null, "é"] }),
      '{"a":6.5,"b":6,"c":0,"d":1e+21,"e":18446744073709551616,"f":[true,null,"\\u00e9"]}',
    );
    assert.equal(canonicalize({ skip: undefined, keep: 1 }), '{"keep":1}');
    assert.throws(() => canonicalize({ a: Number.NaN }));
    assert.throws(() => canonicalize({ a: Number.POSITIVE_INFINITY }));
    assert.throws(() => canonicalize({ a: new Date(0) }));
    assert.throws(() => canonicalize([undefined]));
    assert.equal(formatPythonFloat(1e16), "1e+16");
  });

  it("keeps __proto__ an own key and never touches Object.prototype", () => {
    const { value, canonical } = parseLossless('{"__proto__":{"polluted":true},"constructor":1}');
    assert.equal(canonical, '{"__proto__":{"polluted":true},"constructor":1}');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value as object), ["__proto__", "constructor"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("omits the signature key only at the top level", () => {
    const { canonical } = parseLossless('{"signature":"x","a":{"signature":1}}', { omitTopLevelKey: "signature" });
    assert.equal(canonical, '{"a":{"signature":1}}');
  });
});

describe("canonical form: what a receiver refuses (SPEC §2)", () => {
  const refused: [string, string | Uint8Array][] = [
    ["duplicate keys", '{"a":1,"a":2}'],
    ["duplicate __proto__", '{"__proto__":1,"__proto__":2}'],
    ["NaN", '{"a":NaN}'],
    ["Infinity", '{"a":Infinity}'],
    ["-Infinity", '{"a":-Infinity}'],
    ["float overflow", '{"a":1E400}'],
    ["lone high surrogate escape", '"\\ud800"'],
    ["lone low surrogate escape", '"\\udc00x"'],
    ["lone surrogate in a JS string", '"\ud800"'],
    ["reversed surrogates", '"\\ude00\\ud83d"'],
    ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])],
    ["UTF-8 encoded surrogate (CESU)", new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])],
    ["BOM", "\ufeff{}"],
    ["BOM in bytes", new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])],
    ["overlong UTF-8", new Uint8Array([0x22, 0xc0, 0xaf, 0x22])],
    ["number lexeme over 64 characters", `{"a":${"1".repeat(65)}}`],
    ["float lexeme over 64 characters", `{"a":0.${"1".repeat(63)}}`],
    ["nesting over 64", `${"[".repeat(65)}${"]".repeat(65)}`],
    ["leading zero", "01"],
    ["trailing comma", '{"a":1,}'],
    ["raw control character", '"a\u0001"'],
    ["single quotes", "{'a':1}"],
    ["trailing text", "{} x"],
    ["empty", ""],
    ["bad escape", '"\\x41"'],
    ["short unicode escape", '"\\u12"'],
    ["bare minus", "-"],
    ["fraction without digits", "1."],
  ];
  for (const [name, input] of refused) {
    it(`refuses ${name}`, () => assert.throws(() => parseLossless(input), JsonSyntaxError));
  }

  it("accepts exactly 64 levels and a 64-character number", () => {
    assert.doesNotThrow(() => parseLossless(`${"[".repeat(64)}${"]".repeat(64)}`));
    assert.doesNotThrow(() => parseLossless(`${"1".repeat(64)}`));
  });

  it("errors do not echo the input", () => {
    try {
      parseLossless('{"secret-looking-value": NaN}');
      assert.fail("should throw");
    } catch (error) {
      assert.ok(!(error as Error).message.includes("secret-looking-value"));
    }
  });
});

describe("canonical form against python3 at test time", () => {
  type Doc = { text: string; canonical: string; js_safe: boolean; js_text: string; js_canonical: string };
  const seed = Number(process.env.CANONICAL_SEED ?? Date.now() % 100_000);
  const docs = python<Doc[]>("random-docs", { n: 600, seed });

  it(`parsed messages canonicalize byte for byte like Python (seed ${seed})`, () => {
    for (const doc of docs) assert.equal(parseLossless(doc.text).canonical, doc.canonical, doc.text);
  });

  it(`JS values canonicalize like Python (seed ${seed})`, () => {
    let checked = 0;
    for (const doc of docs) {
      if (!doc.js_safe) continue;
      assert.equal(canonicalize(JSON.parse(doc.js_text)), doc.js_canonical, doc.js_text);
      checked++;
    }
    assert.ok(checked > 100, `only ${checked} JS-safe documents`);
  });

  it("Python canonicalizes what we write to the same bytes", () => {
    const ours = docs.slice(0, 200).map((d) => parseLossless(d.text).canonical);
    const theirs = python<string[]>("canonical", { texts: ours });
    assert.deepEqual(theirs, ours);
  });
});

describe("long strings (written as bytes past 256 units) and many keys (sorted natively)", () => {
  const unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
  const hex4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  // An independent oracle: JSON.stringify escapes like Python below U+007F; the rest is written \uXXXX.
  const oracle = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, hex4);

  it("quoteString of any string, short or long, matches the oracle (lone surrogates included)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit, maxLength: 300 }), fc.string({ unit, minLength: 257, maxLength: 3000 })), (s) =>
        assert.equal(quoteString(s), oracle(s)),
      ),
      { numRuns: 400 },
    );
  });

  it("quoteInto writes quoteString's text as bytes at any offset, odd or even (the hex table, the 16/32-bit stores)", () => {
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 300 }), fc.nat(7), (s, at) => {
        const out = Buffer.alloc(at + s.length * 6 + 2 + 8, 0xee);
        const end = quoteInto(s, out, at);
        assert.equal(out.toString("latin1", at, end), oracle(s));
        assert.ok(
          out.subarray(0, at).every((b) => b === 0xee),
          "nothing written before the offset",
        );
        assert.ok(
          out.subarray(end).every((b) => b === 0xee),
          "nothing written past the end",
        );
      }),
      { numRuns: 400 },
    );
  });

  it("a long text Python wrote, and an object of 5,000 keys in text order, canonicalize like Python", () => {
    const text = JSON.stringify({ t: `é\n"\\😀\u007f${"\u00e9\ud83d\ude00".repeat(300)}`, u: "x".repeat(300) });
    const keys = `{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(",")},"\uffff":1,"\ud83d\ude00":2}`;
    const plainKeys = `{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    const texts = [text, keys, plainKeys];
    assert.deepEqual(
      python<string[]>("canonical", { texts }),
      texts.map((t) => parseLossless(t).canonical),
    );
  });
});

describe("signRequest writes what the generic signer writes", () => {
  const key = toKeys("a-secret-of-at-least-16-bytes", "test")[0] as Key;
  /** The same bytes and signature, or the same refusal (a lone surrogate anywhere). */
  const agree = (fields: Parameters<typeof signRequest>[0]) => {
    let generic: ReturnType<typeof signMessage> | Error;
    try {
      generic = signMessage({ v: "mcp/0.1", ...fields }, key);
    } catch (error) {
      generic = error as Error;
    }
    if (generic instanceof Error) {
      assert.throws(() => signRequest(fields, key), { name: generic.name, message: generic.message });
      return;
    }
    const fast = signRequest(fields, key);
    assert.equal(fast.body, generic.body);
    assert.deepEqual(fast.message, generic.message);
  };

  it("same bytes, signature and message for fixed envelopes, and the same refusal of a lone surrogate", () => {
    const base = { request_id: "r-1", ts_ms: 1795270000000, client_id: "c", server_id: "s", tool: "batch_sum", nonce: "n" };
    agree({ ...base, args: { numbers: [1.5, 2.25, 3, 1e-7, 1e16] } });
    agree({ ...base, args: {}, client_id: "é😀", tool: 'a"\\\n\u007f' });
    agree({ ...base, args: { "": null, z: { y: [true, "x"] }, a: 2n ** 70n } });
    agree({ ...base, args: { x: "\ud800" } });
    agree({ ...base, args: {}, tool: "\udfff" });
    assert.throws(() => signRequest({ ...base, args: { x: "\ud800" } }, key), /lone surrogate/);
    // An untyped caller's non-string tool or id is refused, never written as its String() form.
    for (const bad of [42, null, undefined, ["x"]]) {
      assert.throws(() => signRequest({ ...base, args: {}, tool: bad as unknown as string }, key), /tool must be a string/);
      assert.throws(
        () => signRequest({ ...base, args: {}, client_id: bad as unknown as string }, key),
        /client_id must be a string/,
      );
    }
  });

  it("agrees with signMessage on random envelopes (any UTF-16 in every string)", () => {
    const unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit, maxLength: 12 }));
    const fields = fc.record({
      request_id: text,
      ts_ms: fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
      client_id: text,
      server_id: text,
      tool: text,
      args: fc.dictionary(text, jsValue, { maxKeys: 6 }),
      nonce: text,
    });
    fc.assert(fc.property(fields, agree), { numRuns: 400 });
  });
});

describe("signResponse writes what the generic signer writes", () => {
  it("same bytes and signature for varied responses", () => {
    const key = toKeys("a-secret-of-at-least-16-bytes", "test")[0] as Key;
    const cases = [
      {
        request_id: "r-1",
        ts_ms: 1795270000000,
        ok: true,
        server_id: "srv",
        status: "ok",
        result: { count: 3, total: 6.5 },
        error: null,
      },
      {
        request_id: "",
        ts_ms: 1,
        ok: false,
        server_id: "é😀",
        status: "error",
        result: { code: "bad_args", details: [{ path: ["x"] }] },
        error: 'bad_args: "x"\n',
      },
      { request_id: "\u0000", ts_ms: 0, ok: true, server_id: "s", status: "running", result: null, error: null },
      { request_id: "r", ts_ms: 2, ok: true, server_id: "s", status: "done", result: { big: 2n ** 70n, f: 1e-7 }, error: null },
    ];
    for (const fields of cases) {
      const fast = signResponse(fields, key);
      const generic = signMessage({ v: "mcp/0.1", ...fields }, key);
      assert.equal(fast.body, generic.body);
      assert.equal(fast.message.signature, generic.message.signature);
    }
  });
});

describe("object size (SPEC §2: at most 10,000 members)", () => {
  const object = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(",")}}`;
  it("10,000 members parse; 10,001 are refused, at any depth and in any order", () => {
    assert.equal(Object.keys(parseLossless(object(10_000)).value as object).length, 10_000);
    assert.throws(() => parseLossless(object(10_001)), JsonSyntaxError);
    assert.throws(() => parseLossless(`{"args":${object(10_001)}}`), JsonSyntaxError);
    const reversed = `{${Array.from({ length: 10_001 }, (_, i) => `"k${10_001 - i}":0`).join(",")}}`;
    assert.throws(() => parseLossless(reversed), JsonSyntaxError);
  });
});
