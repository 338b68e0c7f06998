import { z } from "zod";
import type { JsonObject } from "./canonical.js";

/** The protocol version string every message carries. */
export const PROTOCOL_VERSION = "mcp/0.1";

/** True for a plain JSON object (not an array, not null, not a class instance). */
export function isJsonObject(value: unknown): value is JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** zod schema of a plain JSON object, kept as it is (no copy, so `__proto__` stays an own key). */
export const JsonObjectSchema = z.custom<JsonObject>(isJsonObject, { message: "expected an object" });
const jsonObject = JsonObjectSchema;
// An integer of any size: the lossless parser yields bigint beyond 2^53.
const integer = z.union([z.number().int(), z.bigint()]);
// Ids are strings of any content the seed allows, bounded so they cannot be used to bloat stores.
const id = z.string().max(256);

/** Strict schema of a request envelope (SPEC §1). */
export const EnvelopeSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  request_id: id,
  ts_ms: integer,
  client_id: id,
  server_id: id,
  tool: id,
  args: jsonObject,
  nonce: id.min(1),
  signature: z.string(),
});

/** A request envelope. */
export type Envelope = z.infer<typeof EnvelopeSchema>;

/** The statuses a response may carry. */
export const RESPONSE_STATUSES = ["ok", "accepted", "running", "done", "error"] as const;
/** A response status. */
export type ResponseStatus = (typeof RESPONSE_STATUSES)[number];

/** Strict schema of a response (SPEC §1), including `ok === (status !== "error")`. */
export const ResponseSchema = z
  .strictObject({
    v: z.literal(PROTOCOL_VERSION),
    request_id: z.string(),
    ts_ms: integer,
    ok: z.boolean(),
    server_id: z.string(),
    status: z.enum(RESPONSE_STATUSES),
    result: jsonObject.nullable(),
    error: z.string().nullable(),
    signature: z.string(),
  })
  .refine((r) => r.ok === (r.status !== "error"), { message: "ok must be false exactly when status is error" });

/** A response message. */
export type ResponseMessage = z.infer<typeof ResponseSchema>;

/** A response before signing. */
export type UnsignedResponse = Omit<ResponseMessage, "signature">;

/** A request envelope before signing. */
export type UnsignedEnvelope = Omit<Envelope, "signature">;

/** Validation issues in a form safe to send: path, code and message, never the input. */
export function describeIssues(error: z.ZodError): { path: (string | number)[]; code: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    code: issue.code,
    message: issue.message,
  }));
}
