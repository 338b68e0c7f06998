/** Sandbox target: the lossless parser and the canonical writer, run on batches. */
import { CanonicalValueError, canonicalize } from "../../../src/protocol/canonical.js";
import { JsonSyntaxError, parseLossless } from "../../../src/protocol/parse.js";
import { serveSandbox } from "../child.js";

/** One parse outcome. */
export type ParseOutcome =
  | { ok: true; canonical: string; floatKeys: string[] | undefined; fixedPoint: boolean }
  | { ok: false; name: string; syntaxError: boolean };

/** One canonicalize outcome. */
export type CanonicalizeOutcome =
  | { ok: true; text: string; reparsed: string | undefined; rewritten: string | undefined }
  | { ok: false; name: string; message: string };

function parseOne(input: string | Uint8Array): ParseOutcome {
  try {
    const parsed = parseLossless(input);
    // Canonical text is itself canonical: parsing it again gives it back.
    const fixedPoint = parseLossless(parsed.canonical).canonical === parsed.canonical;
    return { ok: true, canonical: parsed.canonical, floatKeys: parsed.floatKeys, fixedPoint };
  } catch (error) {
    return { ok: false, name: (error as Error).name, syntaxError: error instanceof JsonSyntaxError };
  }
}

function canonicalizeOne(value: unknown): CanonicalizeOutcome {
  let text: string;
  try {
    text = canonicalize(value);
  } catch (error) {
    const e = error as Error;
    return { ok: false, name: error instanceof CanonicalValueError ? "CanonicalValueError" : e.name, message: e.message };
  }
  // parse ∘ canonicalize: the text reads back to itself, and its value writes the same text.
  let reparsed: string | undefined;
  let rewritten: string | undefined;
  try {
    const parsed = parseLossless(text);
    reparsed = parsed.canonical;
    rewritten = canonicalize(parsed.value);
  } catch {
    // Lone surrogates: a receiver refuses them (SPEC §2); the test checks that this is the only reason.
  }
  return { ok: true, text, reparsed, rewritten };
}

serveSandbox({
  parse: (inputs: (string | Uint8Array)[], mark) =>
    inputs.map((input, i) => {
      mark(i);
      return parseOne(input);
    }),
  canonicalize: (values: unknown[], mark) =>
    values.map((value, i) => {
      mark(i);
      return canonicalizeOne(value);
    }),
});
