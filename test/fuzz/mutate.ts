/**
 * Mutations of a message: bit flips, inserted bytes (random, or tokens that
 * matter to a JSON parser), deleted and duplicated ranges, truncation. They
 * apply to bytes (what arrives on the wire) or to UTF-16 code units (what a
 * JS caller may hand over: lone surrogates included).
 */
import fc from "fast-check";

/** One edit; positions are taken modulo the length, so any mutation applies to any input. */
export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; unit: number }
  | { kind: "insert"; at: number; units: number[] }
  | { kind: "delete"; at: number; length: number }
  | { kind: "duplicate"; at: number; length: number; to: number }
  | { kind: "truncate"; at: number };

const bytes = (text: string) => [...Buffer.from(text, "utf8")];

// Bytes and tokens that steer a JSON parser: structure, quotes, escapes, number parts, invalid UTF-8.
const BYTE_TOKENS: number[][] = [
  ...'"\\{}[],:-.eE0 \n\t/u'.split("").map((c) => bytes(c)),
  [0x00],
  [0x1f],
  [0x7f],
  [0x80],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xff],
  [0xef, 0xbb, 0xbf],
  bytes("\\u"),
  bytes("\\ud800"),
  bytes("\\udc00"),
  bytes("\\ud83d\\ude00"),
  bytes("😀"),
  bytes("NaN"),
  bytes("1e400"),
  bytes('"x":'),
  bytes(".0"),
  bytes("e0"),
];

const UNIT_TOKENS: number[][] = [
  ...BYTE_TOKENS.filter((t) => t.every((b) => b < 0x80)),
  [0xd800],
  [0xdc00],
  [0xd83d, 0xde00],
  [0xde00, 0xd83d],
  [0xfeff],
  [0xffff],
];

function mutationOf(tokens: number[][], maxUnit: number): fc.Arbitrary<Mutation> {
  const at = fc.nat({ max: 1 << 20 });
  return fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at, bit: fc.nat({ max: maxUnit === 0xff ? 7 : 15 }) }),
    fc.record({ kind: fc.constant("set" as const), at, unit: fc.nat({ max: maxUnit }) }),
    fc.record({
      kind: fc.constant("insert" as const),
      at,
      units: fc.oneof(fc.constantFrom(...tokens), fc.array(fc.nat({ max: maxUnit }), { minLength: 1, maxLength: 4 })),
    }),
    fc.record({ kind: fc.constant("delete" as const), at, length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant("duplicate" as const), at, length: fc.integer({ min: 1, max: 32 }), to: at }),
    fc.record({ kind: fc.constant("truncate" as const), at }),
  );
}

/** 1-4 byte-level mutations. */
export const byteMutations: fc.Arbitrary<Mutation[]> = fc.array(mutationOf(BYTE_TOKENS, 0xff), { minLength: 1, maxLength: 4 });
/** 1-4 UTF-16-level mutations. */
export const unitMutations: fc.Arbitrary<Mutation[]> = fc.array(mutationOf(UNIT_TOKENS, 0xffff), { minLength: 1, maxLength: 4 });

function apply(units: number[], mutations: readonly Mutation[]): number[] {
  const out = [...units];
  for (const m of mutations) {
    const n = out.length;
    switch (m.kind) {
      case "flip":
        if (n > 0) out[m.at % n] = ((out[m.at % n] as number) ^ (1 << m.bit)) >>> 0;
        break;
      case "set":
        if (n > 0) out[m.at % n] = m.unit;
        break;
      case "insert":
        out.splice(m.at % (n + 1), 0, ...m.units);
        break;
      case "delete":
        if (n > 0) out.splice(m.at % n, m.length);
        break;
      case "duplicate":
        if (n > 0) {
          const from = m.at % n;
          out.splice(m.to % (n + 1), 0, ...out.slice(from, from + m.length));
        }
        break;
      case "truncate":
        out.length = m.at % (n + 1);
        break;
    }
  }
  return out;
}

/** The UTF-8 bytes of `text` with `mutations` applied. */
export function mutateBytes(text: string | Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  const source = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  return Uint8Array.from(apply([...source], mutations).map((b) => b & 0xff));
}

/** `text` with `mutations` applied to its UTF-16 code units. */
export function mutateUnits(text: string, mutations: readonly Mutation[]): string {
  const units: number[] = [];
  for (let i = 0; i < text.length; i++) units.push(text.charCodeAt(i));
  const out = apply(units, mutations);
  let s = "";
  for (let i = 0; i < out.length; i += 4096) s += String.fromCharCode(...out.slice(i, i + 4096).map((u) => u & 0xffff));
  return s;
}
