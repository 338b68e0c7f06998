/**
 * What every answer of an smcp server must be, whatever the request (SPEC
 * §1, §3, §5, §6): a signed response that verifies with the server's key,
 * with a §5 code and the §6 HTTP status, at most 16 KiB when it is an
 * error, carrying no text from the request but its request_id, no stack,
 * no secret. The tables here are written from the SPEC, not imported.
 */
import assert from "node:assert/strict";
import { canonicalize, type JsonObject, quoteString } from "../../src/protocol/canonical.js";
import { ResponseSchema } from "../../src/protocol/messages.js";
import { parseLossless } from "../../src/protocol/parse.js";
import { verifyCanonical } from "../../src/protocol/sign.js";
import { CLIENT_SECRET, OTHER_CLIENT_SECRET, SERVER_SECRET } from "../helpers.js";
import { serverKey } from "./json.js";

/** SPEC §5's codes with SPEC §6's HTTP status. */
export const SPEC_STATUS: ReadonlyMap<string, number> = new Map([
  ["bad_envelope", 400],
  ["bad_args", 400],
  ["unknown_client", 401],
  ["bad_signature", 401],
  ["stale", 401],
  ["replay", 401],
  ["wrong_server", 401],
  ["unknown_tool", 404],
  ["unknown_job", 404],
  ["too_large", 413],
  ["rate_limited", 429],
  ["unavailable", 503],
  ["tool_failed", 500],
  ["bad_output", 500],
  ["internal", 500],
]);

/** Codes decided before the nonce step: such a request stores nothing and runs nothing. */
export const BEFORE_NONCE: ReadonlySet<string> = new Set([
  "bad_envelope",
  "unknown_client",
  "bad_signature",
  "wrong_server",
  "stale",
  "too_large",
  "unavailable",
]);

/** Largest error answer (SPEC §5). */
export const MAX_ERROR_BYTES = 16 * 1024;

/** A checked answer: its status or error code. */
export interface Checked {
  /** The error code, or the status of a normal answer ("ok", "accepted", ...). */
  code: string;
  requestId: string;
  result: JsonObject | null;
}

const SECRETS = [SERVER_SECRET, CLIENT_SECRET, OTHER_CLIENT_SECRET];

/**
 * Holds one answer to SPEC: signed, well-formed, the right status, bounded,
 * reflecting nothing. `markers` must not appear anywhere but in request_id.
 */
export function checkAnswer(
  answer: { body: string | Uint8Array; httpStatus: number },
  request: { markers: readonly string[]; requestId?: string | undefined },
): Checked {
  const text = typeof answer.body === "string" ? answer.body : Buffer.from(answer.body).toString("utf8");
  const show = text.slice(0, 400);
  const parsed = parseLossless(answer.body, { omitTopLevelKey: "signature" });
  const shape = ResponseSchema.safeParse(parsed.value);
  assert.ok(shape.success, `not a response (SPEC §1): ${show}`);
  const response = shape.data;
  assert.equal(parsed.floatKeys, undefined, `a float lexeme at the top level: ${show}`);
  assert.ok(verifyCanonical([serverKey], parsed.canonical, response.signature), `does not verify with the server's key: ${show}`);
  if (request.requestId !== undefined) assert.equal(response.request_id, request.requestId, `request_id: ${show}`);
  let code: string = response.status;
  if (response.status === "error") {
    const wireCode = response.result?.code;
    assert.ok(typeof wireCode === "string" && SPEC_STATUS.has(wireCode), `not a SPEC §5 code: ${show}`);
    code = wireCode;
    assert.ok(response.error?.startsWith(`${code}: `), `error does not start with its code: ${show}`);
    assert.equal(answer.httpStatus, SPEC_STATUS.get(code), `HTTP status of ${code}: ${show}`);
    assert.ok(Buffer.byteLength(text) <= MAX_ERROR_BYTES, `error answer of ${Buffer.byteLength(text)} bytes > 16 KiB`);
  } else {
    assert.equal(answer.httpStatus, 200, `HTTP status of a normal answer: ${show}`);
  }
  // Nothing from the request but request_id: take it out, then look for every marker. A bad_args
  // answer (only ever to a caller whose signature verified, SPEC §5) may name the keys that caller
  // sent, in each issue's path and message: those are checked for their bounds, then taken out too.
  let scrubbed = text.replace(`"request_id":${quoteString(response.request_id)}`, '"request_id":""');
  if (code === "bad_args") scrubbed = withoutCallerKeys(scrubbed, response.result, show);
  for (const m of request.markers) assert.ok(!scrubbed.includes(m), `the answer reflects ${m}: ${show}`);
  if (!response.request_id.includes("\u001b"))
    assert.ok(!/\\u001b/i.test(scrubbed), `the answer carries an escape sequence: ${show}`);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `a secret in the answer: ${show}`);
  assert.ok(!/\bat .*\.(ts|js):\d+/.test(text), `a stack trace in the answer: ${show}`);
  return { code, requestId: response.request_id, result: response.result };
}

/** The request_id a server must copy from a request (SPEC §3): a string of at most 256 characters, else "". */
export function requestIdOf(body: string | Uint8Array): string {
  try {
    const value = parseLossless(body).value;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const id = (value as JsonObject).request_id;
      if (typeof id === "string" && id.length <= 256) return id;
    }
  } catch {
    // not JSON: ""
  }
  return "";
}

/** The answer's text with each bad_args issue's path and message replaced, once their bounds hold (SPEC §5). */
function withoutCallerKeys(text: string, result: unknown, show: string): string {
  const issues = (result as { details?: { issues?: unknown } } | null)?.details?.issues;
  if (!Array.isArray(issues)) return text;
  let out = text;
  for (const issue of issues as { path?: unknown; message?: unknown }[]) {
    for (const segment of Array.isArray(issue.path) ? issue.path : []) {
      if (typeof segment !== "string") continue;
      assert.ok(segment.length <= 64, `a path key of ${segment.length} characters: ${show}`);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: what must not be there
      assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(segment), `a control character in a path key: ${show}`);
    }
    if (Array.isArray(issue.path)) out = out.replace(`"path":${canonicalize(issue.path)}`, '"path":[]');
    if (typeof issue.message === "string") {
      assert.ok(issue.message.length <= 400, `an issue message of ${issue.message.length} characters: ${show}`);
      out = out.replace(quoteString(issue.message), '""');
    }
  }
  return out;
}
