import { canonicalize } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import type { JobError, JobState } from "./store.js";

// The job policy, once: what every backend (memory, SQLite, Redis and its Lua scripts, which get these
// values as ARGV) does the same way. test/jobs-differential.test.ts drives the same random events
// through every backend and requires the same answers.

/**
 * The job state machine: from each state, the states a store may move a job
 * to (every move a compare-and-set on the state it leaves).
 */
export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  queued: ["running", "done", "error", "cancelled"],
  running: ["queued", "done", "error", "cancelled"],
  done: [],
  error: [],
  cancelled: [],
};

/** True for a state no transition leaves. */
export function isFinal(state: JobState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** The error a cancelled job carries (`poll_job` answers it as `error`/`cancelled`). */
export const CANCELLED_ERROR: Readonly<JobError> = Object.freeze({ code: "cancelled", message: "cancelled" });
/** {@link CANCELLED_ERROR} as stores keep it. */
export const CANCELLED_ERROR_TEXT = canonicalize(CANCELLED_ERROR);

/** The error of a job whose worker died during each of its `attempts` (a lease lapsed each time). */
export function attemptsExhausted(attempts: number): JobError {
  return { code: "tool_failed", message: `the worker stopped during each of ${attempts} attempts` };
}

/**
 * {@link attemptsExhausted}'s canonical text around the number, for a store
 * that writes it where only the count is known (a Lua script: before .. n .. after).
 */
export function attemptsExhaustedTemplate(): [before: string, after: string] {
  const marker = 987654321;
  const [before, after] = canonicalize(attemptsExhausted(marker)).split(String(marker));
  return [before as string, after as string];
}

/**
 * The fair-scheduling turn of a new job. A client's jobs take turns one
 * after another while it has open jobs (else it starts at 1), but never below
 * the turn its tool is serving: the turn of the tool's job started last. So a
 * client that waited is not ranked behind a flood's jobs that ran while it
 * was idle, and a flood's next job queues behind everyone else's next one.
 * Queued jobs start lowest turn first, then oldest.
 */
export function nextTurn(client: { open: number; lastTurn: number }, serving: number | undefined): number {
  return Math.max(client.open > 0 ? client.lastTurn + 1 : 1, serving ?? 1);
}

/** How long a client refused for open jobs is told to wait before retrying, ms. */
export const OPEN_JOBS_RETRY_MS = 1000;
/** How long a client refused for stored bytes is told to wait (retention frees them), ms. */
export const STORED_BYTES_RETRY_MS = 60_000;

/** The refusal a store throws when a client is past a quota. */
export function quotaExceeded(reason: "open_jobs" | "stored_bytes"): SmcpError {
  const retry = reason === "open_jobs" ? OPEN_JOBS_RETRY_MS : STORED_BYTES_RETRY_MS;
  const what = reason === "open_jobs" ? "too many open jobs for this client" : "this client's jobs hold too much data";
  return new SmcpError("rate_limited", `${what}; retry later`, { details: { reason, retry_after_ms: retry } });
}
