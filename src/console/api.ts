/**
 * The JSON the console's backend gives its page. Types only: the page's
 * bundle imports them too, so nothing here may reach for Node.
 *
 * Every value under `answer` comes from a response whose signature, request
 * id, server id, shape and freshness were verified (SPEC §3); an answer that
 * failed any of those checks is only ever reported as `refused`, with the
 * client's reason, never with what it claimed.
 */

/** A JSON value as the page receives it (integers past 2^53 arrive as their digits, in a string). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object as the page receives it. */
export type JsonObj = { [key: string]: Json };

/** A job's state (`list_jobs`, or what a `poll_job` answer says). */
export type JobState = "queued" | "running" | "done" | "error" | "cancelled";

/** What became of one request to the server. */
export type Outcome =
  /** A verified answer: whatever it says (ok, accepted, a job's state, or a protocol error) was signed by the server. */
  | {
      kind: "answer";
      status: "ok" | "accepted" | "running" | "done" | "error";
      result: JsonObj | null;
      /** For `status: "error"`: the error code, the message after it, and `result.details`. */
      code?: string;
      message?: string;
      details?: Json;
    }
  /** Something answered, but not with a response that verifies: nothing it said is shown. */
  | { kind: "refused"; code: string; message: string }
  /** No answer at all (server down, timeout, a local error). */
  | { kind: "unreachable"; code: string; message: string };

/** One tool of the catalogue (`list_tools`, protocol tools left out). */
export interface ToolInfo {
  name: string;
  description: string;
  kind: "sync" | "job";
  input_schema: JsonObj;
  output_schema: JsonObj;
}

/** One call made through the console (its history). */
export interface HistoryEntry {
  id: number;
  tool: string;
  args: JsonObj;
  /** When the console sent it (Unix ms). */
  started_ms: number;
  /** Until its answer was verified (or refused), in ms. */
  duration_ms: number;
  outcome: Outcome;
  /** For an accepted job: its id. */
  job_id?: string;
}

/** One verified observation of a job. */
export interface TimelinePoint {
  at_ms: number;
  state: JobState;
  progress: Json;
  version: number | null;
}

/** A job as the console knows it: from `list_jobs`, verified polls, and (for the jobs it started) what it submitted. */
export interface JobInfo {
  job_id: string;
  tool: string | null;
  state: JobState | null;
  progress: Json;
  version: number | null;
  note?: string;
  /** From `list_jobs` (server clock). */
  created_ms?: number;
  updated_ms?: number;
  /** Present with a `jobs:all` listing (SPEC §9): whose job it is. */
  client_id?: string;
  /** What the console itself submitted (list_jobs and poll_job do not return arguments). */
  args?: JsonObj;
  /** When the console sent the call that started it, and when the acceptance was verified (console clock). */
  submitted_ms?: number;
  accepted_ms?: number;
  /** When the console first saw it finished (console clock). */
  finished_ms?: number;
  /** A done job's result. */
  result?: JsonObj;
  /** A failed or cancelled job's error. */
  error?: { code: string; message: string; details?: Json };
  /** Verified observations, oldest first (bounded). */
  timeline: TimelinePoint[];
  /** The last poll that did not give a verified answer, if the latest one did not. */
  problem?: Outcome;
}

/** `GET /api/session`: who the console talks to, and as whom. */
export interface SessionInfo {
  /** The server's URL (any password in it masked). */
  url: string;
  client_id: string;
  server_id: string;
  /** How this console verifies answers: an Ed25519 public key it pins, or an HMAC secret it holds. */
  verification: "ed25519" | "hmac-sha256";
  /** `server_identity`, verified, or why not. */
  identity: Outcome;
  /** `list_tools` without the protocol's own tools, or why not. */
  tools: ToolInfo[];
  tools_outcome: Outcome;
  history: HistoryEntry[];
  /** Where the console reads metrics from, if anywhere. */
  metrics_url: string | null;
}

/** `GET /api/jobs`: `list_jobs` as verified, merged with what the console knows of each job. */
export interface JobList {
  outcome: Outcome;
  jobs: JobInfo[];
}

/** One sample of the server's metrics, as rates over the interval before it. */
export interface MetricsPoint {
  at_ms: number;
  /** Requests per second answered (all tools). */
  rate: number;
  /** Mean latency of requests other than held long polls, ms; null without any. */
  mean_ms: number | null;
  /** 95th percentile of the same, ms (upper bound of its histogram bucket); null without any. */
  p95_ms: number | null;
}

/** `GET /api/metrics` and the `metrics` event. */
export interface MetricsInfo {
  url: string | null;
  /** False until a scrape succeeded, or after one failed. */
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
  points: MetricsPoint[];
  /** Answers by error code since the server started (the counter's value). */
  errors: Record<string, number>;
  /** Answers in all since the server started. */
  total: number;
}
