import type { z } from "zod";
import { wireText } from "../protocol/errors.js";
import { type IssueDetails, MAX_ISSUES, type WireIssue } from "../protocol/issues.js";

// SPEC §5: a bad_args answer goes only to a caller whose signature verified, so it may name
// the keys that caller sent (bounded, control characters escaped) and say what was expected.

/** Longest key shown in a `bad_args` path or message (SPEC §5). */
export const MAX_SHOWN_KEY = 64;

/** What a check knows of one failure, in zod's vocabulary (ajv's keywords are mapped onto it). */
export interface IssueFacts {
  path: readonly PropertyKey[];
  code: string;
  /** invalid_type: the type expected. */
  expected?: string | undefined;
  /** unrecognized_keys: the keys that should not be there. */
  keys?: readonly string[] | undefined;
  /** too_small / too_big: the bound, what it bounds, and whether it is inclusive. */
  minimum?: number | bigint | undefined;
  maximum?: number | bigint | undefined;
  origin?: string | undefined;
  inclusive?: boolean | undefined;
  /** invalid_value: the values allowed (the schema's, never the caller's). */
  values?: readonly unknown[] | undefined;
  /** not_multiple_of. */
  divisor?: number | bigint | undefined;
}

/** A key as an answer may show it: control characters escaped, at most {@link MAX_SHOWN_KEY} characters. */
export function shownKey(key: string): string {
  return wireText(key, MAX_SHOWN_KEY);
}

/** `numbers[0]`, `payload.name`: a path as the caller wrote it. */
export function pathText(path: readonly (string | number)[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out;
}

/** One issue on the wire, with a readable message; `args` is what the caller sent (to tell "required" from "wrong type"). */
export function argIssue(facts: IssueFacts, args: unknown): WireIssue {
  const path = facts.path.map((s) => (typeof s === "number" ? s : shownKey(String(s))));
  const at = pathText(path);
  const prefix = at === "" ? "" : `${at}: `;
  return { path, code: facts.code, message: prefix + describe(facts, valueAt(args, facts.path)) };
}

/** Wire details of a zod error on a tool's arguments: bounded, with messages. */
export function argIssuesFromZod(error: z.ZodError, args: unknown): IssueDetails {
  const all = error.issues;
  const issues = all.slice(0, MAX_ISSUES).map((issue) => argIssue(issue as unknown as IssueFacts, args));
  return { issues, more: all.length - issues.length };
}

function describe(facts: IssueFacts, value: { found: boolean; value?: unknown }): string {
  switch (facts.code) {
    case "invalid_type":
      if (!value.found) return "required";
      return facts.expected ? `expected ${facts.expected}, got ${typeName(value.value)}` : `wrong type: ${typeName(value.value)}`;
    case "unrecognized_keys": {
      const keys = (facts.keys ?? []).slice(0, 5).map((k) => `'${shownKey(k)}'`);
      const more = (facts.keys?.length ?? 0) - keys.length;
      return `unexpected key${keys.length === 1 && more === 0 ? "" : "s"} ${keys.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
    }
    case "too_small":
      return bound("at least", "more than", facts.minimum, facts);
    case "too_big":
      return bound("at most", "less than", facts.maximum, facts);
    case "invalid_value": {
      const values = (facts.values ?? []).slice(0, 10).map((v) => JSON.stringify(v) ?? String(v));
      return values.length > 0 ? `expected one of ${values.join(", ")}`.slice(0, 200) : "not an allowed value";
    }
    case "not_multiple_of":
      return `must be a multiple of ${facts.divisor}`;
    case "invalid_union":
      return "matches none of the allowed shapes";
    case "invalid_format":
      return "wrong format";
    default:
      return "invalid";
  }
}

function bound(inclusive: string, exclusive: string, limit: number | bigint | undefined, facts: IssueFacts): string {
  if (limit === undefined) return facts.code === "too_small" ? "too small" : "too big";
  const word = facts.inclusive === false ? exclusive : inclusive;
  switch (facts.origin) {
    case "array":
    case "set":
      return `must have ${word} ${limit} item${limit === 1 ? "" : "s"}`;
    case "string":
      return `must be ${word} ${limit} character${limit === 1 ? "" : "s"} long`;
    case "object":
      return `must have ${word} ${limit} key${limit === 1 ? "" : "s"}`;
    default:
      return `must be ${word} ${limit}`;
  }
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number" && !Number.isInteger(value)) return "float";
  return typeof value === "bigint" ? "integer" : typeof value === "number" ? "integer" : typeof value;
}

/** The value at `path` inside what the caller sent, if there is one (own keys only). */
function valueAt(args: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let value = args;
  for (const segment of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, segment)) return { found: false };
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value === undefined ? { found: false } : { found: true, value };
}
