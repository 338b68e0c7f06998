/**
 * Every error code smcp puts on the wire (SPEC §5), with its HTTP status
 * (SPEC §6) and a default human message. `cancelled` and `timeout` only ever
 * appear as a job's final state inside a `poll_job` answer (HTTP 200).
 */
export const ERROR_CODES = {
  bad_envelope: { http: 400, message: "the message is not a valid mcp/0.1 envelope" },
  unknown_client: { http: 401, message: "unknown client_id" },
  bad_signature: { http: 401, message: "signature does not verify" },
  wrong_server: { http: 401, message: "envelope is addressed to another server" },
  stale: { http: 401, message: "ts_ms is outside the freshness window" },
  replay: { http: 401, message: "nonce already used" },
  unknown_tool: { http: 404, message: "no such tool" },
  bad_args: { http: 400, message: "arguments do not match the tool's input schema" },
  unknown_job: { http: 404, message: "no such job" },
  too_large: { http: 413, message: "message too large" },
  rate_limited: { http: 429, message: "too many requests" },
  forbidden: { http: 403, message: "this client may not use this tool" },
  tool_failed: { http: 500, message: "the tool failed" },
  bad_output: { http: 500, message: "the tool's output does not match its output schema" },
  unavailable: { http: 503, message: "a store the server needs is unavailable" },
  internal: { http: 500, message: "internal error" },
  cancelled: { http: 200, message: "cancelled" },
  timeout: { http: 200, message: "the job exceeded its time limit" },
} as const satisfies Record<string, { http: number; message: string }>;

/** A wire error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of {@link ERROR_CODES} (safe for any string). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** HTTP status for an error code (SPEC §6). */
export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}

/** Optional parts of an {@link SmcpError}. */
export interface SmcpErrorOptions {
  /** Machine-readable details, e.g. validation issues. Sent on the wire as `result.details`. */
  details?: unknown;
  /** The underlying cause; never sent on the wire. */
  cause?: unknown;
  /** What was received, when the client rejected an answer (body text or parsed value). */
  received?: unknown;
  /** Where the error was decided: by the peer in a verified response, or locally. */
  origin?: "remote" | "local";
}

/**
 * The one error type for the wire: a protocol error with its code. Tools may
 * throw it to answer with a specific code; clients throw it for verified
 * error responses (`origin: "remote"`) and for answers that fail
 * verification (`origin: "local"`, with `received`).
 */
// Brands instead of class identity: a tool module may load its own copy of smcp
// (`--tools app.ts` through tsx, a nested node_modules), and its errors must still count.
const SMCP_ERROR = Symbol.for("smcp.error");
const SMCP_USAGE_ERROR = Symbol.for("smcp.usage_error");
const SMCP_TOOL_ERROR = Symbol.for("smcp.tool_error");

export class SmcpError extends Error {
  /** `instanceof` by brand, so an error from another copy of smcp is recognised. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[SMCP_ERROR] === true;
  }

  override readonly name = "SmcpError";
  readonly [SMCP_ERROR] = true;
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly received: unknown;
  readonly origin: "remote" | "local";

  constructor(code: ErrorCode, message?: string, options: SmcpErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.received = options.received;
    this.origin = options.origin ?? "local";
  }

  /** HTTP status for this error's code. */
  get httpStatus(): number {
    return httpStatusFor(this.code);
  }

  /** The `error` string of a response: `"code: message"`. */
  get wireMessage(): string {
    return `${this.code}: ${this.message}`;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Longest message an error answer carries (SPEC §5); {@link wireText} cuts to it. */
export const MAX_ERROR_MESSAGE = 512;

/**
 * Text as an error answer may carry it (SPEC §5): control characters
 * escaped, at most {@link MAX_ERROR_MESSAGE} characters, well-formed. The one
 * place an answer's message is bounded, whoever wrote it (a tool, an upstream, smcp).
 */
export function wireText(text: string, max = MAX_ERROR_MESSAGE): string {
  const escaped = text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return (escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped).toWellFormed();
}

/**
 * The one normaliser from unknown errors: an {@link SmcpError} passes
 * through; anything else becomes `fallback` with the default message of that
 * code (the original is kept as `cause`, which never reaches the wire).
 */
export function toSmcpError(
  error: unknown,
  fallback: ErrorCode,
  options: { message?: string; origin?: "remote" | "local" } = {},
): SmcpError {
  if (error instanceof SmcpError) return error;
  return new SmcpError(fallback, options.message, { cause: error, ...(options.origin ? { origin: options.origin } : {}) });
}

/**
 * A tool's deliberate failure: throw it from a handler to tell the caller
 * why (`tool_failed` on the wire, with this message and `details`), even on
 * a server that hides the messages of unexpected errors. Any other error a
 * handler throws is unexpected: its message reaches the caller too unless
 * the server hides them (`hideToolErrors`).
 */
export class ToolError extends Error {
  /** `instanceof` by brand, so an error from another copy of smcp is recognised. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[SMCP_TOOL_ERROR] === true;
  }

  override readonly name = "ToolError";
  readonly [SMCP_TOOL_ERROR] = true;
  /** JSON the caller gets as `result.details`. */
  readonly details: unknown;

  constructor(message: string, details?: unknown) {
    super(message);
    this.details = details;
  }
}

/** A store the server needs failed (fail closed, SPEC §5): `unavailable`, the store's own error kept as `cause`. */
export function storeUnavailable(error: unknown): SmcpError {
  return toSmcpError(error, "unavailable", { message: "a store the server needs is unavailable; retry later" });
}

/**
 * The one error type for local misuse: bad configuration or wrong API use.
 * Never sent on the wire. Messages name the problem and the fix.
 */
export class SmcpUsageError extends Error {
  /** `instanceof` by brand, so an error from another copy of smcp is recognised. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[SMCP_USAGE_ERROR] === true;
  }

  override readonly name = "SmcpUsageError";
  readonly [SMCP_USAGE_ERROR] = true;
}
