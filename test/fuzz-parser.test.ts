/**
 * Generative tests of the lossless parser and the canonical writer (issue
 * #8, SPEC §2). The parser runs in a worker with a deadline (a hang is a
 * failure naming its input); every outcome is checked against Python: a
 * text is accepted exactly when `json.loads` accepts it within SPEC §2's
 * limits, and then its canonical form is byte for byte what
 * `json.dumps(sort_keys=True, separators=(",", ":"))` gives; otherwise it is
 * a `JsonSyntaxError`.
 */
import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import {
  anyDocument,
  deepText,
  envelopeText,
  floatLexeme,
  intLexeme,
  jsString,
  jsValue,
  responseText,
  toModel,
  treeText,
  wellFormed,
  wideText,
} from "./fuzz/json.js";
import { byteMutations, mutateBytes, mutateUnits, unitMutations } from "./fuzz/mutate.js";
import { PythonOracle } from "./fuzz/oracle.js";
import { runProperty } from "./fuzz/run.js";
import { HangError, Sandbox } from "./fuzz/sandbox.js";
import type { CanonicalizeOutcome, ParseOutcome } from "./fuzz/targets/parser.js";

const sandbox = new Sandbox(new URL("./fuzz/targets/parser.ts", import.meta.url));
const oracle = new PythonOracle();
// Start-up (worker, Python) is not part of any property's time budget.
before(async () => {
  await Promise.all([sandbox.ready(), oracle.parse([])]);
});
after(async () => {
  await Promise.all([sandbox.close(), oracle.close()]);
});

// Generous: a batch is at most a few MB of text; only a hang comes near it.
const DEADLINE_MS = 5_000;

const show = (input: string | Uint8Array) =>
  typeof input === "string" ? JSON.stringify(input).slice(0, 300) : `bytes ${Buffer.from(input).toString("hex").slice(0, 300)}`;

/**
 * Parses every input in the sandbox and holds each outcome to Python's
 * verdict: accepted with Python's canonical text, or a JsonSyntaxError.
 */
async function judge(inputs: (string | Uint8Array)[]): Promise<void> {
  const outcomes = await sandbox.call<ParseOutcome[]>("parse", inputs, DEADLINE_MS).catch((error: unknown) => {
    // Name the very input the parser was stuck on.
    if (error instanceof HangError) throw new Error(`${error.message}; the input: ${show(inputs[error.at] ?? "")}`);
    throw error;
  });
  const texts: string[] = [];
  const asked: number[] = [];
  inputs.forEach((input, i) => {
    const outcome = outcomes[i] as ParseOutcome;
    if (!outcome.ok) assert.ok(outcome.syntaxError, `${show(input)} threw ${outcome.name}, not JsonSyntaxError`);
    else assert.ok(outcome.fixedPoint, `${show(input)}: its canonical text does not parse back to itself`);
    if (typeof input === "string") {
      texts.push(input);
      asked.push(i);
    } else if (isUtf8(input)) {
      texts.push(Buffer.from(input).toString("utf8"));
      asked.push(i);
    } else {
      assert.ok(!outcome.ok, `${show(input)} is not UTF-8 but was accepted`);
    }
  });
  const verdicts = await oracle.parse(texts);
  verdicts.forEach((verdict, k) => {
    const i = asked[k] as number;
    const input = inputs[i] as string | Uint8Array;
    const outcome = outcomes[i] as ParseOutcome;
    if (verdict[0] === "ok") {
      assert.ok(outcome.ok, `${show(input)}: Python accepts it (${verdict[1].slice(0, 100)}) but it was refused`);
      assert.equal(outcome.canonical, verdict[1], `${show(input)}: canonical form differs from Python's`);
    } else {
      assert.ok(!outcome.ok, `${show(input)}: Python/SPEC §2 refuses it (${verdict[1]}) but it was accepted`);
    }
  });
}

/**
 * Every prefix of `text` by byte, and by UTF-16 code unit when it is not
 * plain ASCII; past 600 of either, every k-th so a case stays around 600 inputs.
 */
function prefixes(text: string): (string | Uint8Array)[] {
  const bytes = Buffer.from(text, "utf8");
  const out: (string | Uint8Array)[] = [];
  const byteStep = Math.ceil(bytes.length / 600);
  for (let n = 0; n <= bytes.length; n += byteStep) out.push(bytes.subarray(0, n));
  if (bytes.length !== text.length) {
    const unitStep = Math.ceil(text.length / 600);
    for (let n = 0; n <= text.length; n += unitStep) out.push(text.slice(0, n));
  }
  return out;
}

const validMessage = fc.oneof(envelopeText, responseText, treeText, deepText);

describe("parser: generative (issue #8)", () => {
  it("every prefix of a message (envelopes, responses, documents) parses as Python says, or throws JsonSyntaxError", async (t) => {
    await runProperty(t, validMessage, (text) => judge(prefixes(text)), { runs: 150, seconds: 3 });
  });

  it("byte flips, insertions, deletions and truncations of a message: Python's verdict, never a hang", async (t) => {
    await runProperty(
      t,
      fc.array(fc.tuple(anyDocument, byteMutations), { minLength: 1, maxLength: 20 }),
      (cases) => judge(cases.map(([text, mutations]) => mutateBytes(text, mutations))),
      { runs: 150, seconds: 2 },
    );
  });

  it("UTF-16 mutations of a message given as a JS string (lone surrogates included): Python's verdict", async (t) => {
    await runProperty(
      t,
      fc.array(fc.tuple(anyDocument, unitMutations), { minLength: 1, maxLength: 20 }),
      (cases) => judge(cases.map(([text, mutations]) => mutateUnits(text, mutations))),
      { runs: 150, seconds: 2 },
    );
  });

  it("random documents (deep, wide, astral, escapes, every number shape) as text and as bytes", async (t) => {
    await runProperty(
      t,
      fc.array(fc.oneof(treeText, deepText, wideText), { minLength: 1, maxLength: 20 }),
      (texts) => judge(texts.flatMap((text) => [text, Buffer.from(text, "utf8")])),
      { runs: 150, seconds: 2 },
    );
  });

  it("random bytes", async (t) => {
    await runProperty(t, fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 50 }), (inputs) => judge(inputs), {
      runs: 100,
      seconds: 1,
    });
  });
});

describe("canonicalize: generative (issue #8)", () => {
  it("terminates on any JS value, writes what Python writes, and parse ∘ canonicalize round-trips", async (t) => {
    await runProperty(
      t,
      fc.array(jsValue, { minLength: 1, maxLength: 20 }),
      async (values) => {
        const outcomes = await sandbox.call<CanonicalizeOutcome[]>("canonicalize", values, DEADLINE_MS);
        const theirs = await oracle.dump(values.map(toModel));
        values.forEach((value, i) => {
          const outcome = outcomes[i] as CanonicalizeOutcome;
          const shown = JSON.stringify(toModel(value)).slice(0, 300);
          assert.ok(outcome.ok, `${shown}: canonicalize threw ${outcome.ok ? "" : outcome.message}`);
          assert.equal(outcome.text, theirs[i], `${shown}: differs from Python`);
          if (wellFormed(value)) {
            assert.equal(outcome.reparsed, outcome.text, `${shown}: parse(canonicalize(v)) is not the same text`);
            assert.equal(outcome.rewritten, outcome.text, `${shown}: canonicalize(parse(canonicalize(v)).value) differs`);
          } else {
            assert.equal(outcome.reparsed, undefined, `${shown}: a lone surrogate was accepted by the parser`);
          }
        });
      },
      { runs: 150, seconds: 2 },
    );
  });
});

describe("floatKeys: generative (issue #8)", () => {
  const validInt = intLexeme.filter((s) => s.length <= 64);
  const validFloat = floatLexeme.filter((s) => s.length <= 64 && Number.isFinite(Number(s)));
  const member = fc.oneof(
    validInt.map((lexeme) => ({ lexeme, float: false })),
    validFloat.map((lexeme) => ({ lexeme, float: true })),
    // Floats below the top level are not reported.
    validFloat.map((lexeme) => ({ lexeme: `{"x":${lexeme}}`, float: false })),
    validFloat.map((lexeme) => ({ lexeme: `[${lexeme}]`, float: false })),
    fc.constantFrom('"1.5"', "true", "null").map((lexeme) => ({ lexeme, float: false })),
  );

  it("reports exactly the top-level keys written as float lexemes, in order", async (t) => {
    await runProperty(
      t,
      fc.array(
        fc.uniqueArray(
          fc.tuple(
            jsString.filter((k) => k.isWellFormed()),
            member,
          ),
          { selector: ([k]) => k, maxLength: 8 },
        ),
        {
          minLength: 1,
          maxLength: 20,
        },
      ),
      async (objects) => {
        const texts = objects.map((members) => `{${members.map(([k, m]) => `${JSON.stringify(k)}:${m.lexeme}`).join(",")}}`);
        const outcomes = await sandbox.call<ParseOutcome[]>("parse", texts, DEADLINE_MS);
        objects.forEach((members, i) => {
          const outcome = outcomes[i] as ParseOutcome;
          assert.ok(outcome.ok, `${texts[i]} was refused`);
          const expected = members.filter(([, m]) => m.float).map(([k]) => k);
          assert.deepEqual(outcome.floatKeys, expected.length > 0 ? expected : undefined, texts[i]);
        });
        // A float lexeme alone, or in an array, is no key's value.
        const top = await sandbox.call<ParseOutcome[]>("parse", ["1.5", "[1.0]", "1e3"], DEADLINE_MS);
        for (const outcome of top) assert.equal(outcome.ok && outcome.floatKeys, undefined);
      },
      { runs: 150, seconds: 1 },
    );
  });
});
