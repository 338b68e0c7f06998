import type { JobEvent } from "../jobs/events.js";
import type { ErrorCode } from "../protocol/errors.js";
import type { ResponseStatus } from "../protocol/messages.js";
import type { OverdueEvent } from "../tools/runs.js";

export type { JobEvent } from "../jobs/events.js";

export type { OverdueEvent } from "../tools/runs.js";

/** One handled request, as an operator sees it (never arguments, secrets or signatures). */
export interface RequestEvent {
  /** The envelope's request_id (as answered: "" when it was not a string of at most 256 characters). */
  requestId: string;
  /** The client, once its signature verified; undefined before. */
  clientId: string | undefined;
  /** The tool, when the server has one by that name; undefined otherwise (never an unknown name). */
  tool: string | undefined;
  /** The answer's error code; undefined for a non-error answer. */
  code: ErrorCode | undefined;
  status: ResponseStatus;
  httpStatus: number;
  durationMs: number;
}

/** Why a client was refused with `rate_limited`. */
export type LimitReason = "rate" | "open_jobs" | "stored_bytes" | "long_polls" | "store_full";

/**
 * What a server reports for metrics and logs (`smcp/observe` turns these
 * into Prometheus metrics and JSON log lines). Every hook is optional and
 * must not throw; none is called with a secret or an argument value.
 */
export interface ServerObserver {
  request?(event: RequestEvent): void;
  job?(event: JobEvent): void;
  /** A store became unusable (`healthy: false`, once per outage) or usable again. */
  store?(event: { healthy: boolean; error?: unknown }): void;
  rateLimited?(event: { clientId: string; reason: LimitReason }): void;
  /** A tool run outlived its timeout or abort (its handler ignores its signal), or such a run finally ended. */
  overdue?(event: OverdueEvent): void;
  /** A client called a tool its scopes don't allow (`tool`: the name when the server has such a tool, never an unknown name). */
  forbidden?(event: { clientId: string; tool: string | undefined }): void;
}
