/**
 * Generative tests of the bounded argument check (src/tools/validate.ts,
 * issue #8): the ajv pre-check compiled from a tool's JSON Schema may only
 * refuse what zod refuses, for the built-in tools and for random zod
 * schemas, on random and near-valid inputs. `check(args, 0)` is zod's
 * verdict (the pre-check's is ignored for small messages);
 * `check(args, Infinity)` is the pre-check's when it refuses: the two must
 * agree on `ok`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import { defineTool, demoTools } from "../src/index.js";
import type { JsonValue } from "../src/protocol/canonical.js";
import { JsonObjectSchema } from "../src/protocol/messages.js";
import { protocolTools } from "../src/tools/protocol.js";
import { ToolRegistry } from "../src/tools/registry.js";
import type { ArgsValidator } from "../src/tools/validate.js";
import { runProperty } from "./fuzz/run.js";

/** Checks the property on one validator and input. */
function agree(validator: ArgsValidator, args: unknown, shown: () => string): void {
  const zodOnly = validator.check(args, 0);
  // A message above the size that gets every issue (16 KiB): the pre-check decides (within the validation budget).
  const bounded = validator.check(args, 20_000);
  assert.equal(bounded.ok, zodOnly.ok, `the pre-check refused what zod accepts: ${shown()}`);
  if (!bounded.ok) {
    // Bounded whichever path answered: at most 20 issues; keys (the schema's or the caller's, SPEC §5)
    // at most 64 characters with no control character; each issue says what to fix.
    for (const details of [bounded.details, zodOnly.ok ? undefined : zodOnly.details]) {
      if (!details) continue;
      assert.ok(details.issues.length <= 20);
      for (const issue of details.issues) {
        for (const segment of issue.path) {
          if (typeof segment === "number") continue;
          assert.ok(segment.length <= 64, `a path key of ${segment.length} characters: ${shown()}`);
          // biome-ignore lint/suspicious/noControlCharactersInRegex: what must not be there
          assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(segment), `a control character in a path key: ${shown()}`);
        }
        assert.ok(typeof issue.message === "string" && issue.message.length > 0 && issue.message.length <= 400, shown());
      }
    }
  }
}

const validatorOf = (input: z.ZodType): ArgsValidator => {
  const tool = defineTool({ name: "t", description: "", input, output: z.object({}), handler: () => ({}) });
  const entry = new ToolRegistry([tool]).entry("t");
  if (!entry) throw new Error("unreachable");
  return entry.args;
};

// Values as the parser delivers them: JSON, with bigint beyond 2^53 and `__proto__` an own key.
const NAMES = [
  "a",
  "b",
  "n",
  "numbers",
  "seconds",
  "payload",
  "job_id",
  "limit",
  "state",
  "constructor",
  "__proto__",
  "toString",
];
const jsonish: fc.Arbitrary<JsonValue> = fc.letrec<{ v: JsonValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom<JsonValue>(
      null,
      true,
      false,
      0,
      -1,
      1,
      1.5,
      20,
      21,
      100,
      101,
      -0,
      1e20,
      2 ** 53,
      "",
      "a",
      "queued",
      "done",
      "x".repeat(300),
    ),
    fc.integer({ min: -5, max: 30 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n }),
    fc.string({ maxLength: 6 }),
    fc.array(tie("v"), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 4 })), tie("v")), { maxLength: 4 })
      .map((entries) => {
        const out: Record<string, JsonValue> = {};
        for (const [k, v] of entries)
          Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        return out;
      }),
  ),
})).v;

describe("argument pre-check: generative (issue #8)", () => {
  it("for the built-in tools, the ajv pre-check refuses only what zod refuses", async (t) => {
    const registry = new ToolRegistry([...protocolTools, ...demoTools]);
    const names = registry.list().map((tool) => tool.name);
    await runProperty(
      t,
      fc.tuple(fc.constantFrom(...names), jsonish),
      ([name, args]) => {
        const entry = registry.entry(name);
        if (!entry) throw new Error(name);
        agree(entry.args, args, () => `${name} ${show(args)}`);
      },
      { runs: 3000, seconds: 1 },
    );
  });

  it("for random zod schemas, the ajv pre-check refuses only what zod refuses", async (t) => {
    await runProperty(
      t,
      schemaSpec.chain((spec) =>
        fc.tuple(
          fc.constant(spec),
          fc.array(fc.oneof({ weight: 3, arbitrary: valueFor(spec) }, { weight: 1, arbitrary: jsonish }), {
            minLength: 1,
            maxLength: 10,
          }),
        ),
      ),
      ([spec, inputs]) => {
        let validator: ArgsValidator;
        try {
          validator = validatorOf(build(spec));
        } catch (error) {
          throw new Error(`cannot define a tool with ${JSON.stringify(spec)}: ${(error as Error).message}`);
        }
        for (const args of inputs) agree(validator, args, () => `${JSON.stringify(spec)} with ${show(args)}`);
      },
      { runs: 300, seconds: 2 },
    );
  });
});

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))?.slice(0, 300) ?? "undefined";
}

// ---------------------------------------------------------------------------
// Random zod schemas, as data (printable in a counterexample), and values near them.

type Spec =
  | { t: "number"; min?: number; max?: number; gt?: number; lt?: number; int?: boolean; step?: number }
  | { t: "string"; min?: number; max?: number; regex?: boolean }
  | { t: "bool" }
  | { t: "null" }
  | { t: "literal"; v: string | number | boolean }
  | { t: "enum"; values: string[] }
  | { t: "jsonObject" }
  | { t: "array"; item: Spec; min?: number; max?: number }
  | { t: "record"; item: Spec }
  | { t: "object"; mode: "strict" | "strip" | "loose"; props: Prop[] }
  | { t: "union"; options: Spec[] }
  | { t: "discriminated"; options: { tag: string; props: Prop[] }[] };

interface Prop {
  name: string;
  spec: Spec;
  wrap: "none" | "optional" | "default" | "nullable";
}

const bound = fc.option(fc.integer({ min: -3, max: 30 }), { nil: undefined });
// Drops the undefined bounds (exact optional properties).
const clean = (o: object): Spec => JSON.parse(JSON.stringify(o)) as Spec;

const leaf: fc.Arbitrary<Spec> = fc.oneof(
  fc
    .record({
      min: bound,
      max: bound,
      gt: bound,
      lt: bound,
      int: fc.boolean(),
      step: fc.option(fc.constantFrom(2, 5, 0.5), { nil: undefined }),
    })
    .map((r) => clean({ t: "number", ...r })),
  fc.record({ min: bound, max: bound, regex: fc.boolean() }).map((r) => clean({ t: "string", ...r })),
  fc.constant<Spec>({ t: "bool" }),
  fc.constant<Spec>({ t: "null" }),
  fc.constantFrom<string | number | boolean>("a", 1, true, 0).map((v): Spec => ({ t: "literal", v })),
  fc
    .uniqueArray(fc.constantFrom("a", "b", "queued", "done", "constructor"), { minLength: 1, maxLength: 3 })
    .map((values): Spec => ({ t: "enum", values })),
  fc.constant<Spec>({ t: "jsonObject" }),
);

const propName = fc.constantFrom(...NAMES, "hasOwnProperty", "valueOf");

const schemaSpec: fc.Arbitrary<Spec> = fc.letrec<{ spec: Spec; object: Spec }>((tie) => ({
  spec: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.record({ item: tie("spec"), min: bound, max: bound }).map((r) => clean({ t: "array", ...r })),
    tie("spec").map((item): Spec => ({ t: "record", item })),
    tie("object"),
    fc.array(tie("spec"), { minLength: 1, maxLength: 3 }).map((options): Spec => ({ t: "union", options })),
    fc
      .uniqueArray(
        fc.tuple(
          fc.constantFrom("x", "y", "z"),
          fc.array(
            fc.record({
              name: fc.constantFrom("a", "b", "n"),
              spec: leaf,
              wrap: fc.constantFrom<Prop["wrap"]>("none", "optional"),
            }),
            { maxLength: 2 },
          ),
        ),
        {
          minLength: 1,
          maxLength: 3,
          selector: ([tag]) => tag,
        },
      )
      .map(
        (options): Spec => ({ t: "discriminated", options: options.map(([tag, props]) => ({ tag, props: uniqueProps(props) })) }),
      ),
  ),
  object: fc
    .record({
      mode: fc.constantFrom<"strict" | "strip" | "loose">("strict", "strip", "loose"),
      props: fc.array(
        fc.record({
          name: propName,
          spec: tie("spec"),
          wrap: fc.constantFrom<Prop["wrap"]>("none", "optional", "default", "nullable"),
        }),
        { maxLength: 4 },
      ),
    })
    .map((r): Spec => ({ t: "object", mode: r.mode, props: uniqueProps(r.props) })),
})).object;

function uniqueProps(props: Prop[]): Prop[] {
  const seen = new Set<string>();
  return props.filter((p) => !seen.has(p.name) && seen.add(p.name) !== undefined);
}

function build(spec: Spec): z.ZodType {
  switch (spec.t) {
    case "number": {
      let s = spec.int ? z.int() : z.number();
      if (spec.min !== undefined) s = s.min(spec.min);
      if (spec.max !== undefined) s = s.max(spec.max);
      if (spec.gt !== undefined) s = s.gt(spec.gt);
      if (spec.lt !== undefined) s = s.lt(spec.lt);
      if (spec.step !== undefined) s = s.multipleOf(spec.step);
      return s;
    }
    case "string": {
      let s = z.string();
      if (spec.min !== undefined) s = s.min(Math.max(0, spec.min));
      if (spec.max !== undefined) s = s.max(Math.max(0, spec.max));
      if (spec.regex) s = s.regex(/^[a-c]*$/);
      return s;
    }
    case "bool":
      return z.boolean();
    case "null":
      return z.null();
    case "literal":
      return z.literal(spec.v);
    case "enum":
      return z.enum(spec.values as [string, ...string[]]);
    case "jsonObject":
      return JsonObjectSchema;
    case "array": {
      let s = z.array(build(spec.item));
      if (spec.min !== undefined) s = s.min(Math.max(0, spec.min));
      if (spec.max !== undefined) s = s.max(Math.max(0, spec.max));
      return s;
    }
    case "record":
      return z.record(z.string(), build(spec.item));
    case "object": {
      const shape = Object.fromEntries(spec.props.map((p) => [p.name, wrap(p)]));
      return spec.mode === "strict" ? z.strictObject(shape) : spec.mode === "loose" ? z.looseObject(shape) : z.object(shape);
    }
    case "union":
      return z.union(spec.options.map(build) as [z.ZodType, z.ZodType, ...z.ZodType[]]);
    case "discriminated":
      return z.discriminatedUnion(
        "kind",
        spec.options.map((o) =>
          z.object({ kind: z.literal(o.tag), ...Object.fromEntries(o.props.map((p) => [p.name, wrap(p)])) }),
        ) as [z.ZodObject<{ kind: z.ZodLiteral<string> }>, ...z.ZodObject<{ kind: z.ZodLiteral<string> }>[]],
      );
  }
}

function wrap(prop: Prop): z.ZodType {
  const inner = build(prop.spec);
  switch (prop.wrap) {
    case "none":
      return inner;
    case "optional":
      return inner.optional();
    case "nullable":
      return inner.nullable();
    case "default": {
      // A default zod itself accepts, or none (a default must parse).
      const value = sample(prop.spec);
      return value === undefined ? inner.optional() : inner.default(value as never);
    }
  }
}

/** A value the spec plainly accepts, when one is easy to name. */
function sample(spec: Spec): unknown {
  switch (spec.t) {
    case "bool":
      return true;
    case "null":
      return null;
    case "literal":
      return spec.v;
    case "enum":
      return spec.values[0];
    case "jsonObject":
      return {};
    default:
      return undefined;
  }
}

/** Values near what `spec` accepts: valid-looking members, edge numbers, missing and extra keys. */
function valueFor(spec: Spec): fc.Arbitrary<unknown> {
  switch (spec.t) {
    case "number": {
      const edges = [spec.min, spec.max, spec.gt, spec.lt]
        .filter((x): x is number => x !== undefined)
        .flatMap((x) => [x - 1, x - 0.5, x, x + 0.5, x + 1]);
      return fc.oneof(
        fc.constantFrom(0, 1, 2.5, -1, 10, 1e20, 2 ** 53, ...edges),
        fc.integer({ min: -5, max: 35 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      );
    }
    case "string":
      return fc.oneof(fc.string({ unit: fc.constantFrom("a", "b", "c", "d", "😀", "é"), maxLength: 32 }), fc.constant(""));
    case "bool":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "literal":
      return fc.constantFrom(spec.v, String(spec.v), 1, "a");
    case "enum":
      return fc.constantFrom(...spec.values, "zz");
    case "jsonObject":
      return fc.oneof(fc.constant({}), jsonish);
    case "array":
      return fc.array(valueFor(spec.item), { maxLength: Math.max(0, (spec.max ?? 4) + 1) });
    case "record":
      return fc.dictionary(fc.string({ maxLength: 3 }), valueFor(spec.item), { maxKeys: 3 });
    case "object":
      return objectValue(spec.props);
    case "union":
      return fc.oneof(...spec.options.map(valueFor));
    case "discriminated":
      return fc.oneof(...spec.options.map((o) => objectValue(o.props).map((v) => ({ kind: o.tag, ...(v as object) }))));
  }
}

function objectValue(props: Prop[]): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      fc.tuple(
        ...props.map((p) =>
          fc.option(p.wrap === "nullable" ? fc.oneof(valueFor(p.spec), fc.constant(null)) : valueFor(p.spec), {
            nil: undefined,
            freq: 5,
          }),
        ),
      ),
      fc.array(fc.tuple(propName, jsonish), { maxLength: 2 }),
    )
    .map(([values, extra]) => {
      const out: Record<string, unknown> = {};
      const set = (k: string, v: unknown) =>
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      props.forEach((p, i) => {
        if (values[i] !== undefined) set(p.name, values[i]);
      });
      for (const [k, v] of extra) set(k, v);
      return out;
    });
}
