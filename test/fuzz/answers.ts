/**
 * Hostile answers for a client: a recipe (data, so a counterexample prints
 * and replays) says how to build the bytes a server, or anyone on the path,
 * sends back for a request: a valid signed response with some fields
 * changed, signed with the wrong key or not at all, laid out differently,
 * then byte-mutated; or random bytes. `valid` says whether SPEC §3 lets a
 * client accept it before mutation.
 */
import fc from "fast-check";
import { canonicalize, type JsonValue } from "../../src/protocol/canonical.js";
import { type Key, toKeys } from "../../src/protocol/keys.js";
import { CLIENT_SECRET, SERVER_ID } from "../helpers.js";
import { forgeSigned } from "./forge.js";
import { anyDocument, FIXED_NOW, jsValue, serverKey } from "./json.js";
import { byteMutations, type Mutation, mutateBytes } from "./mutate.js";

/** The client's transport timeout over HTTP in the client fuzz target. */
export const HTTP_TIMEOUT_MS = 500;

/** How the answer to one request is made. */
export interface AnswerRecipe {
  /** Random bytes instead of a response. */
  random?: Uint8Array;
  status: "ok" | "error" | "running" | "done" | "accepted";
  result: JsonValue;
  /** Field changes: a value, or null with `drop` to remove the field. */
  changes: { field: string; value: JsonValue; drop: boolean }[];
  signWith: "server" | "client" | "none" | "garbage";
  layout: "canonical" | "pretty";
  floatTs: boolean;
  mutations: Mutation[];
  /** HTTP only: how the bytes are delivered. */
  delivery: "whole" | "stall" | "cut" | "short_length";
  httpStatus: number;
  /** Whether SPEC §3 lets a client accept the answer as built (before mutations and delivery). */
  valid: boolean;
}

const clientKey = toKeys(CLIENT_SECRET, "client")[0] as Key;

// Changes that make an answer unacceptable (wrong request, wrong server, stale, bad shape) ...
const breaking = fc.oneof(
  fc.constantFrom<[string, JsonValue, boolean]>(
    ["request_id", "another-request", false],
    ["request_id", null, true],
    ["server_id", "another-server", false],
    ["server_id", 5, false],
    ["ts_ms", FIXED_NOW + 300_001, false],
    ["ts_ms", FIXED_NOW - 10_000_000, false],
    ["ts_ms", "1795304232049", false],
    ["ts_ms", 1.5, false],
    ["ok", "true", false],
    ["status", "weird", false],
    ["result", [], false],
    ["result", "x", false],
    ["error", 5, false],
    ["v", "mcp/0.2", false],
    ["signature", null, true],
    ["extra", "x", false],
    ["__proto__", {}, false],
  ),
  fc
    .constantFrom("v", "request_id", "ts_ms", "ok", "server_id", "status", "result", "error")
    .map((field): [string, JsonValue, boolean] => [field, null, true]),
);
// ... and ones that keep it acceptable.
const harmless = fc.oneof(
  fc.constant<[string, JsonValue, boolean]>(["ts_ms", FIXED_NOW + 299_999, false]),
  fc.constant<[string, JsonValue, boolean]>(["error", "tool_failed: x", false]),
);

/** A recipe for the answer to one request. */
export const answerRecipe: fc.Arbitrary<AnswerRecipe> = fc
  .record({
    random: fc.option(
      fc.oneof(
        anyDocument.map((t) => Buffer.from(t)),
        fc.uint8Array({ maxLength: 200 }),
      ),
      { freq: 4, nil: undefined },
    ),
    status: fc.constantFrom("ok" as const, "error" as const, "running" as const, "done" as const, "accepted" as const),
    result: fc.oneof(
      fc.constant<JsonValue>({ runs: 1 }),
      jsValue.filter((v) => v !== null && typeof v === "object" && !Array.isArray(v)),
    ),
    breaking: fc.array(breaking, { maxLength: 2 }),
    harmless: fc.array(harmless, { maxLength: 1 }),
    signWith: fc.constantFrom(
      "server" as const,
      "server" as const,
      "server" as const,
      "client" as const,
      "none" as const,
      "garbage" as const,
    ),
    layout: fc.constantFrom("canonical" as const, "pretty" as const),
    floatTs: fc.boolean(),
    mutations: fc.oneof(fc.constant<Mutation[]>([]), byteMutations),
    delivery: fc.constantFrom(
      "whole" as const,
      "whole" as const,
      "whole" as const,
      "stall" as const,
      "cut" as const,
      "short_length" as const,
    ),
    httpStatus: fc.constantFrom(200, 200, 400, 401, 404, 500, 503, 302, 204),
  })
  .map((r) => {
    const changes = [...r.harmless, ...r.breaking].map(([field, value, drop]) => ({ field, value, drop }));
    const result = r.status === "error" ? { code: "tool_failed" } : r.result;
    const valid =
      r.random === undefined &&
      r.breaking.length === 0 &&
      r.signWith === "server" &&
      !r.floatTs &&
      // A result that holds lone surrogates cannot be received (SPEC §2).
      wellFormed(result);
    return {
      ...(r.random ? { random: r.random } : {}),
      status: r.status,
      result,
      changes,
      signWith: r.signWith,
      // JSON.stringify writes bigints not at all and integers beyond 2^53 rounded: those stay canonical.
      layout: prettySafe(result) ? r.layout : "canonical",
      floatTs: r.floatTs,
      mutations: r.mutations,
      delivery: r.delivery,
      httpStatus: r.httpStatus,
      valid,
    };
  });

/** True when JSON.stringify writes `value` with the numbers canonical form has. */
function prettySafe(value: JsonValue): boolean {
  if (typeof value === "bigint") return false;
  if (typeof value === "number") return !Number.isInteger(value) || Number.isSafeInteger(value) || Math.abs(value) >= 1e21;
  if (value === null || typeof value !== "object") return true;
  return Object.values(value).every(prettySafe);
}

function wellFormed(value: JsonValue): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v));
}

/** The bytes of an answer to the request with `requestId`, before and after mutation. */
export function buildAnswer(recipe: AnswerRecipe, requestId: string): { original: Uint8Array; bytes: Uint8Array } {
  if (recipe.random) return { original: recipe.random, bytes: mutateBytes(recipe.random, recipe.mutations) };
  const fields: Record<string, JsonValue> = {
    v: "mcp/0.1",
    request_id: requestId,
    ts_ms: FIXED_NOW,
    ok: recipe.status !== "error",
    server_id: SERVER_ID,
    status: recipe.status,
    result: recipe.result,
    error: recipe.status === "error" ? "tool_failed: the tool failed" : null,
  };
  let dropSignature = false;
  let signatureValue: JsonValue | undefined;
  for (const change of recipe.changes) {
    if (change.field === "signature") {
      if (change.drop) dropSignature = true;
      else signatureValue = change.value;
    } else if (change.drop) delete fields[change.field];
    else
      Object.defineProperty(fields, change.field, { value: change.value, enumerable: true, writable: true, configurable: true });
  }
  let message: Record<string, JsonValue>;
  switch (recipe.signWith) {
    case "server":
      message = forgeSigned(fields, serverKey) as Record<string, JsonValue>;
      break;
    case "client":
      message = forgeSigned(fields, clientKey) as Record<string, JsonValue>;
      break;
    case "none":
      message = { ...fields };
      break;
    case "garbage":
      message = { ...fields, signature: "0".repeat(64) };
      break;
  }
  if (dropSignature) delete message.signature;
  else if (signatureValue !== undefined) message.signature = signatureValue;
  let text = recipe.layout === "canonical" ? canonicalize(message) : JSON.stringify(message, null, 2);
  if (recipe.floatTs) text = text.replace(/("ts_ms":\s*)(\d+)/, "$1$2.0");
  const original = Buffer.from(text, "utf8");
  return { original, bytes: mutateBytes(original, recipe.mutations) };
}
