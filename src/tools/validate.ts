import { createRequire } from "node:module";
import type { Ajv2020, ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import type { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { type IssueDetails, MAX_ISSUES } from "../protocol/issues.js";
import { argIssue, argIssuesFromZod, pathText, shownKey } from "./arg-issues.js";
import { assertSchemaCost, MAX_SCHEMA_COST, MAX_VALIDATION_STEPS, schemaCost } from "./schema-cost.js";

/** Inputs up to this size (bytes of the message) get every zod issue (up to the cap); larger ones the first. */
const DETAILED_BELOW_BYTES = 16 * 1024;

/** The outcome of checking a tool's arguments. */
export type ArgsCheck = { ok: true; data: unknown } | { ok: false; details: IssueDetails };

/**
 * Checks arguments against a zod schema in bounded time. A JSON Schema
 * validator compiled from the schema's own JSON Schema (the one `list_tools`
 * publishes) runs first and stops at the first error, so a huge bad input is
 * refused in about the time it takes to read it; zod, the source of truth,
 * then parses what passed (defaults, transforms, refinements). The compiled
 * check is made looser than zod where the two could differ (no `pattern`,
 * `format` or string lengths), so it never refuses what zod accepts;
 * a property test holds it to that.
 */
export class ArgsValidator {
  readonly #schema: z.ZodType;
  readonly #precheck: ValidateFunction | undefined;
  /** Every property name the schema declares: the only keys an issue path may show. */
  readonly names: ReadonlySet<string>;
  /** Top-level arguments the schema makes integers (`"type": "integer"`): a float lexeme there is refused. */
  readonly #integers: ReadonlySet<string>;

  readonly #authoritative: boolean;
  /** Schema-node evaluations per argument value, at most (schema-cost.ts): what a large message may cost. */
  readonly #bound: number;

  /**
   * `authoritative`: the JSON Schema is the tool's own contract (not derived
   * from zod), so it is compiled as it is and its verdict stands on inputs of
   * any size; a schema ajv cannot compile is then a usage error.
   */
  constructor(schema: z.ZodType, jsonSchema: JsonObject, options: { authoritative?: boolean } = {}) {
    this.#schema = schema;
    this.#authoritative = options.authoritative ?? false;
    const names = new Set<string>();
    collectNames(jsonSchema, names);
    this.names = names;
    this.#integers = integerProperties(jsonSchema);
    const cost = schemaCost(jsonSchema);
    this.#bound = cost.ok ? cost.bound : MAX_SCHEMA_COST;
    // ajv takes an argument named "__proto__" for an additional property and refuses what zod
    // accepts (found by test/fuzz-validate.test.ts): for such a derived schema zod alone decides.
    this.#precheck = this.#authoritative
      ? compileExact(jsonSchema)
      : names.has("__proto__")
        ? undefined
        : compileLoose(jsonSchema);
  }

  /**
   * Checks `args`; `messageBytes` (the request's size) decides how much
   * detail a failure gets. `floatArgs`: the top-level arguments written as
   * float lexemes (`ParsedJson.floatArgs`); one the schema makes an integer
   * is `invalid_type` (SPEC §2: `1000.0` is a float), as `ts_ms` is.
   */
  check(args: unknown, messageBytes = 0, floatArgs?: readonly string[]): ArgsCheck {
    // Refused before any validation runs: a message too big for what this schema costs per value.
    if ((this.#bound * messageBytes) / 2 > MAX_VALIDATION_STEPS) {
      const most = Math.floor((2 * MAX_VALIDATION_STEPS) / this.#bound);
      return {
        ok: false,
        details: {
          issues: [
            { path: [], code: "too_big", message: `the arguments are too large for this tool's schema: at most ${most} bytes` },
          ],
          more: 0,
        },
      };
    }
    const checked = this.#check(args, messageBytes);
    const floats = floatArgs?.filter((name) => this.#integers.has(name));
    if (!floats?.length) return checked;
    // The value alone reads as an integer (1000.0 is 1000): say what the lexeme was.
    const issues = floats.map((name) => ({
      path: [shownKey(name)],
      code: "invalid_type",
      message: `${pathText([shownKey(name)])}: expected integer, got float`,
    }));
    if (checked.ok) return { ok: false, details: { issues, more: 0 } };
    const others = checked.details.issues.filter((issue) => !floats.includes(issue.path[0] as string));
    const all = [...issues, ...others];
    const shown = all.slice(0, MAX_ISSUES);
    return { ok: false, details: { issues: shown, more: checked.details.more + all.length - shown.length } };
  }

  #check(args: unknown, messageBytes: number): ArgsCheck {
    const pre = this.#precheck;
    if (pre && !pre(args)) {
      if (this.#authoritative || messageBytes > DETAILED_BELOW_BYTES)
        return { ok: false, details: fromAjv(pre.errors?.[0], args) };
    }
    const parsed = this.#schema.safeParse(args);
    if (parsed.success) return { ok: true, data: parsed.data };
    return { ok: false, details: argIssuesFromZod(parsed.error, args) };
  }
}

/** The one issue ajv stopped at (allErrors off), in zod's vocabulary, with a message. */
function fromAjv(error: ErrorObject | undefined, args: unknown): IssueDetails {
  if (!error) return { issues: [], more: 0 };
  const path: (string | number)[] = error.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((s) => (/^(0|[1-9]\d*)$/.test(s) ? Number(s) : s));
  const params = error.params as Record<string, unknown>;
  // A missing key is reported at its parent; name it, as zod does.
  if (error.keyword === "required" && typeof params.missingProperty === "string") path.push(params.missingProperty);
  const limit = typeof params.limit === "number" ? params.limit : undefined;
  const issue = argIssue(
    {
      path,
      code: AJV_CODES.get(error.keyword) ?? "invalid",
      expected: typeof params.type === "string" ? params.type : undefined,
      keys: typeof params.additionalProperty === "string" ? [params.additionalProperty] : undefined,
      minimum: /^min|^exclusiveMin/.test(error.keyword) ? limit : undefined,
      maximum: /^max|^exclusiveMax/.test(error.keyword) ? limit : undefined,
      inclusive: !error.keyword.startsWith("exclusive"),
      origin: /Items$/.test(error.keyword) ? "array" : /Properties$/.test(error.keyword) ? "object" : "number",
      values: Array.isArray(params.allowedValues)
        ? params.allowedValues
        : "allowedValue" in params
          ? [params.allowedValue]
          : undefined,
      divisor: typeof params.multipleOf === "number" ? params.multipleOf : undefined,
    },
    args,
  );
  return { issues: [issue], more: 0 };
}

// ajv keywords in zod's issue vocabulary, so answers read the same whichever check refused.
const AJV_CODES = new Map<string, string>([
  ["type", "invalid_type"],
  ["required", "invalid_type"],
  ["additionalProperties", "unrecognized_keys"],
  ["minItems", "too_small"],
  ["minimum", "too_small"],
  ["exclusiveMinimum", "too_small"],
  ["minProperties", "too_small"],
  ["maxItems", "too_big"],
  ["maximum", "too_big"],
  ["exclusiveMaximum", "too_big"],
  ["maxProperties", "too_big"],
  ["enum", "invalid_value"],
  ["const", "invalid_value"],
  ["anyOf", "invalid_union"],
  ["oneOf", "invalid_union"],
  ["multipleOf", "not_multiple_of"],
]);

// Loaded on first use: a client that never builds a server does not pay for ajv's import.
let ajv: Ajv2020 | undefined;

function compiler(): Ajv2020 {
  if (!ajv) {
    const { Ajv2020: Ajv } = createRequire(import.meta.url)("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js");
    // addUsedSchema off: schemas are compiled, never registered by their $id, so two servers in one
    // process (or one tool compiled twice) never clash over an id.
    // inlineRefs off: inlining copies a referenced schema's code at every $ref, which a schema that
    // references a large definition many times turns into megabytes of code and seconds of compiling.
    ajv = new Ajv({
      allErrors: false,
      strict: false,
      validateFormats: false,
      addUsedSchema: false,
      inlineRefs: false,
      code: { optimize: 1 },
    });
  }
  return ajv;
}

function compileLoose(jsonSchema: JsonObject): ValidateFunction | undefined {
  try {
    return compiler().compile(loosen(jsonSchema) as object);
  } catch {
    return undefined; // a schema ajv cannot take: zod alone decides
  }
}

function compileExact(jsonSchema: JsonObject): ValidateFunction {
  const { $schema: _ignored, ...schema } = jsonSchema;
  // A schema smcp did not write: its validation cost is bounded before ajv takes it.
  assertSchemaCost(schema, (why) => new SmcpUsageError(`the tool's input JSON Schema is too costly to validate: ${why}`));
  try {
    return compiler().compile(schema);
  } catch (error) {
    throw new SmcpUsageError(`the tool's input JSON Schema cannot be compiled: ${(error as Error).message}`);
  }
}

/** Keywords under which a JSON Schema holds subschemas: by name, in a list, or in a map of names. */
export const SUBSCHEMA = new Set([
  "items",
  "additionalProperties",
  "not",
  "contains",
  "propertyNames",
  "unevaluatedItems",
  "unevaluatedProperties",
  "if",
  "then",
  "else",
]);
/** Keywords holding a list of subschemas. */
export const SUBSCHEMA_LIST = new Set(["anyOf", "oneOf", "allOf", "prefixItems"]);
/** Keywords holding a map of names to subschemas (its keys are names, not keywords). */
export const SUBSCHEMA_MAP = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
// Checks zod makes differently (regex flags, formats, string length in code points
// rather than UTF-16 units, multipleOf with decimal rounding: zod takes 0.3 as a
// multiple of 0.1, ajv does not; found by test/fuzz-validate.test.ts): left to zod.
const LEFT_TO_ZOD = new Set(["pattern", "format", "minLength", "maxLength", "multipleOf", "$schema"]);

/** A copy of a JSON Schema without the keywords zod decides alone. */
function loosen(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (LEFT_TO_ZOD.has(key)) continue;
    if (SUBSCHEMA.has(key)) out[key] = loosen(value);
    else if (SUBSCHEMA_LIST.has(key) && Array.isArray(value)) out[key] = value.map(loosen);
    else if (SUBSCHEMA_MAP.has(key) && typeof value === "object" && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, loosen(sub)]));
    } else out[key] = value;
  }
  return out;
}

function collectNames(schema: unknown, names: Set<string>): void {
  if (typeof schema !== "object" || schema === null) return;
  if (Array.isArray(schema)) {
    for (const item of schema) collectNames(item, names);
    return;
  }
  for (const [key, value] of Object.entries(schema)) {
    if ((key === "properties" || key === "required") && typeof value === "object" && value !== null) {
      for (const name of Array.isArray(value) ? value : Object.keys(value)) if (typeof name === "string") names.add(name);
    }
    if (typeof value === "object") collectNames(value, names);
  }
}

/** The top-level properties a JSON Schema types `integer`. */
function integerProperties(jsonSchema: JsonObject): ReadonlySet<string> {
  const out = new Set<string>();
  const properties = jsonSchema.properties;
  if (typeof properties !== "object" || properties === null || Array.isArray(properties)) return out;
  for (const [name, schema] of Object.entries(properties)) {
    if (typeof schema === "object" && schema !== null && !Array.isArray(schema) && schema.type === "integer") out.add(name);
  }
  return out;
}
