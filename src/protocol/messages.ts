import { z } from "zod";
import type { JsonObject } from "./canonical.js";

/** The protocol version string every message carries. */
export const PROTOCOL_VERSION = "mcp/0.1";

/** The longest `wait_ms` a long poll may ask for (SPEC §8). */
export const MAX_WAIT_MS = 30_000;

/** Longest id (request_id, client_id, server_id, tool, nonce) a message may carry. */
export const MAX_ID_LENGTH = 256;

/** True for a plain JSON object (not an array, not null, not a class instance). */
export function isJsonObject(value: unknown): value is JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** True for an id as messages carry it: a string of at most {@link MAX_ID_LENGTH} characters. */
export function isId(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_ID_LENGTH;
}

/**
 * True for a `ts_ms` value: a safe integer. (That it was written as an
 * integer lexeme is checked on the text: see `ParsedJson.floatKeys`.)
 * The envelope fast path and the zod schemas share this one definition.
 */
export function isTimestamp(value: unknown): value is number {
  return Number.isSafeInteger(value);
}

/**
 * zod schema of a plain JSON object, kept as it is (no copy, so `__proto__`
 * stays an own key); its JSON Schema says `"type": "object"`.
 */
export const JsonObjectSchema = z
  .custom<JsonObject>(isJsonObject, { message: "expected an object" })
  .meta({ type: "object" } as Record<string, unknown>);
const id = z.custom<string>(isId, { message: `expected a string of at most ${MAX_ID_LENGTH} characters` });
const timestamp = z.custom<number>(isTimestamp, { message: "expected an integer (Unix ms)" });

/** Strict schema of a request envelope (SPEC §1). */
export const EnvelopeSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  request_id: id,
  ts_ms: timestamp,
  client_id: id,
  server_id: id,
  tool: id,
  args: JsonObjectSchema,
  nonce: id.refine((nonce) => nonce.length > 0, { message: "the nonce is empty" }),
  signature: z.string(),
});

/** A request envelope. */
export type Envelope = z.infer<typeof EnvelopeSchema>;

/** The field names of an envelope: the only keys an envelope error's path may name. */
export const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(Object.keys(EnvelopeSchema.shape));

/**
 * The envelope if it is plainly valid: exactly the nine fields, each of the
 * simplest accepted type. Every check here is one the schema makes too (same
 * predicates), so whatever this accepts {@link EnvelopeSchema} accepts; a
 * property test holds it to that. Undefined means "ask the schema".
 */
export function plainEnvelope(value: unknown): Envelope | undefined {
  if (!isJsonObject(value)) return undefined;
  let keys = 0;
  for (const _ in value) keys++;
  if (keys !== ENVELOPE_FIELDS.size) return undefined;
  const { v, request_id, ts_ms, client_id, server_id, tool, args, nonce, signature } = value;
  if (v !== PROTOCOL_VERSION || typeof signature !== "string" || !isJsonObject(args)) return undefined;
  if (!(isId(request_id) && isId(client_id) && isId(server_id) && isId(tool) && isId(nonce) && nonce !== "")) return undefined;
  if (!isTimestamp(ts_ms)) return undefined;
  return value as Envelope;
}

/** The statuses a response may carry. */
export const RESPONSE_STATUSES = ["ok", "accepted", "running", "done", "error"] as const;
/** A response status. */
export type ResponseStatus = (typeof RESPONSE_STATUSES)[number];

/** Strict schema of a response (SPEC §1), including `ok === (status !== "error")`. */
export const ResponseSchema = z
  .strictObject({
    v: z.literal(PROTOCOL_VERSION),
    request_id: z.string(),
    ts_ms: timestamp,
    ok: z.boolean(),
    server_id: z.string(),
    status: z.enum(RESPONSE_STATUSES),
    result: JsonObjectSchema.nullable(),
    error: z.string().nullable(),
    signature: z.string(),
  })
  .refine((r) => r.ok === (r.status !== "error"), { message: "ok must be false exactly when status is error" });

/** The field names of a response. */
export const RESPONSE_FIELDS: ReadonlySet<string> = new Set([
  "v",
  "request_id",
  "ts_ms",
  "ok",
  "server_id",
  "status",
  "result",
  "error",
  "signature",
]);

/** A response message. */
export type ResponseMessage = z.infer<typeof ResponseSchema>;

/** A response before signing. */
export type UnsignedResponse = Omit<ResponseMessage, "signature">;

/** A request envelope before signing. */
export type UnsignedEnvelope = Omit<Envelope, "signature">;
