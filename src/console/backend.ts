import { performance } from "node:perf_hooks";
import type { SmcpClient } from "../client/client.js";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError, wireText } from "../protocol/errors.js";
import { isJsonObject, type ResponseMessage } from "../protocol/messages.js";
import { protocolTools } from "../tools/protocol.js";
import { sleep } from "../util/abort.js";
import type { HistoryEntry, JobInfo, JobList, JobState, Json, JsonObj, Outcome, SessionInfo, ToolInfo } from "./api.js";
import type { MetricsSampler } from "./metrics.js";

/** The protocol's own tools: the catalogue hides them and `/api/call` refuses them (the console has its own views for jobs). */
export const PROTOCOL_TOOL_NAMES: ReadonlySet<string> = new Set(protocolTools.map((t) => t.name));

const JOB_STATES: ReadonlySet<string> = new Set(["queued", "running", "done", "error", "cancelled"]);
/** Calls kept in the history. */
const MAX_HISTORY = 200;
/** Jobs the console remembers; past it, the oldest finished ones are forgotten. */
const MAX_JOBS = 500;
/** Verified observations kept per job (the first, and the latest ones). */
const MAX_TIMELINE = 120;
/**
 * Jobs followed at once with long polls. The server holds at most 64 polls
 * per client by default (`--max-held-polls`), and the same client may be busy
 * elsewhere (`smcp wait`), so the console keeps well under it.
 */
const MAX_WATCHERS = 16;

/** What the backend tells its page's event stream. */
export type ConsoleEvent =
  | { type: "job"; data: JobInfo }
  | { type: "history"; data: HistoryEntry }
  | { type: "metrics"; data: unknown };

/** What a {@link ConsoleBackend} needs. */
export interface BackendOptions {
  client: SmcpClient;
  /** The server's URL, password masked, as the page shows it. */
  url: string;
  verification: SessionInfo["verification"];
  /** How long one long poll waits (below the transport's timeout). */
  longPollMs: number;
  metrics: MetricsSampler;
}

/**
 * Everything the console does with the server, through one signed client:
 * each method returns what the server said only after the client verified it
 * (SPEC §3), or says why there is nothing verified to show. It also follows
 * open jobs with long polls (SPEC §8) and tells listeners of every change.
 */
export class ConsoleBackend {
  readonly #client: SmcpClient;
  readonly #options: BackendOptions;
  readonly #history: HistoryEntry[] = [];
  readonly #jobs = new Map<string, JobInfo>();
  readonly #watching = new Set<string>();
  readonly #waitingToWatch: string[] = [];
  readonly #listeners = new Set<(event: ConsoleEvent) => void>();
  readonly #closed = new AbortController();
  #nextId = 1;
  #tools: { tools: ToolInfo[]; outcome: Outcome } | undefined;

  constructor(options: BackendOptions) {
    this.#client = options.client;
    this.#options = options;
  }

  /** Adds a listener of events; returns its removal. */
  listen(listener: (event: ConsoleEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** How many listen now (the metrics sampler runs only while someone looks). */
  get listeners(): number {
    return this.#listeners.size;
  }

  #emit(event: ConsoleEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /** Sends one request and says what became of it; never throws for the server's sake. */
  #ask(tool: string, args: JsonObject): Promise<Outcome> {
    return settle(this.#client.request(tool, args, { signal: this.#closed.signal }));
  }

  /** Polls a job; with `wait`, a long poll that answers at the job's next change (SPEC §8). */
  #poll(jobId: string, wait?: { waitMs: number; version: number }): Promise<Outcome> {
    return settle(this.#client.poll(jobId, { ...wait, signal: this.#closed.signal }));
  }

  /** Who the console talks to: `server_identity` (verified), the catalogue, this session's calls. */
  async session(): Promise<SessionInfo> {
    const [identity, tools] = await Promise.all([this.#ask("server_identity", {}), this.tools(true)]);
    return {
      url: this.#options.url,
      client_id: this.#client.clientId,
      server_id: this.#client.serverId,
      verification: this.#options.verification,
      identity,
      tools: tools.tools,
      tools_outcome: tools.outcome,
      history: [...this.#history],
      metrics_url: this.#options.metrics.url,
    };
  }

  /** The catalogue (`list_tools`, protocol tools left out); asked again when `refresh`. */
  async tools(refresh = false): Promise<{ tools: ToolInfo[]; outcome: Outcome }> {
    if (this.#tools && !refresh && this.#tools.outcome.kind === "answer") return this.#tools;
    const outcome = await this.#ask("list_tools", {});
    const listed = outcome.kind === "answer" && outcome.status === "ok" ? outcome.result?.tools : undefined;
    const tools = (Array.isArray(listed) ? (listed as unknown[]) : []).filter(isToolInfo);
    const catalogue = { tools: tools.filter((t) => !PROTOCOL_TOOL_NAMES.has(t.name)), outcome: withoutBulk(outcome) };
    this.#tools = catalogue;
    return catalogue;
  }

  /** Calls a tool (never a protocol tool) and records it in the history; an accepted job is followed. */
  async call(tool: string, args: JsonObj): Promise<HistoryEntry> {
    const started = Date.now();
    const begun = performance.now();
    const outcome = await this.#ask(tool, args as JsonObject);
    const entry: HistoryEntry = {
      id: this.#nextId++,
      tool,
      args,
      started_ms: started,
      duration_ms: Math.round((performance.now() - begun) * 10) / 10,
      outcome,
    };
    const jobId = outcome.kind === "answer" && outcome.status === "accepted" ? outcome.result?.job_id : undefined;
    if (typeof jobId === "string") {
      entry.job_id = jobId;
      const job = this.#job(jobId);
      job.tool = tool;
      job.args = args;
      job.submitted_ms = started;
      job.accepted_ms = Date.now();
      job.state ??= "queued";
      job.version ??= 1; // a job is at version 1 when accepted (SPEC §8): the first long poll waits for news
      // The verified acceptance is the timeline's first point.
      if (job.timeline.length === 0) this.#point(job, { at_ms: job.accepted_ms, state: "queued", progress: null, version: 1 });
      this.#emit({ type: "job", data: job });
      this.#watch(jobId);
    }
    this.#history.push(entry);
    if (this.#history.length > MAX_HISTORY) this.#history.shift();
    this.#emit({ type: "history", data: entry });
    return entry;
  }

  /** `list_jobs` with its filters (verified), merged with what the console knows; open jobs get followed. */
  async jobs(filter: { state?: JobState; tool?: string; limit?: number }): Promise<JobList> {
    const args: JsonObject = { limit: filter.limit ?? 50 };
    if (filter.state !== undefined) args.state = filter.state;
    if (filter.tool !== undefined) args.tool = filter.tool;
    const outcome = await this.#ask("list_jobs", args);
    const listed = outcome.kind === "answer" && outcome.status === "ok" ? outcome.result?.jobs : undefined;
    const jobs: JobInfo[] = [];
    for (const row of Array.isArray(listed) ? listed : []) {
      if (!isJsonObject(row as JsonObject) || typeof (row as JsonObj).job_id !== "string") continue;
      const { job_id, tool, state, created_ms, updated_ms, client_id } = row as JsonObj;
      const job = this.#job(job_id as string);
      if (typeof tool === "string") job.tool = tool;
      if (typeof created_ms === "number") job.created_ms = created_ms;
      if (typeof updated_ms === "number") job.updated_ms = updated_ms;
      // Hook for `jobs:all` (SPEC §9): such a listing names each job's client.
      if (typeof client_id === "string") job.client_id = client_id;
      // The listing is as fresh as a poll, but a poll's answer carries more (progress, result): keep the poll's
      // view unless the listing says the job moved on.
      if (typeof state === "string" && JOB_STATES.has(state) && (job.state === null || !isFinal(job.state))) {
        job.state = state as JobState;
      }
      if (job.state !== null && !isFinal(job.state)) this.#watch(job.job_id);
      jobs.push(job);
    }
    return { outcome: withoutBulk(outcome), jobs };
  }

  /** One job: what the console knows, after a verified poll when it knows little (or was asked to refresh). */
  async job(jobId: string, refresh = false): Promise<JobInfo> {
    const known = this.#jobs.get(jobId);
    if (!known || refresh || known.state === null) {
      const outcome = await this.#poll(jobId);
      this.#observe(jobId, outcome);
    }
    const job = this.#job(jobId);
    if (job.state !== null && !isFinal(job.state)) this.#watch(jobId);
    return job;
  }

  /** Cancels a job (verified answer), then polls it so its page shows the state after. */
  async cancel(jobId: string): Promise<{ outcome: Outcome; job: JobInfo }> {
    const outcome = await this.#ask("cancel_job", { job_id: jobId });
    const job = await this.job(jobId, true);
    return { outcome, job };
  }

  /** Stops following jobs and answers every held call at once. */
  close(): void {
    this.#closed.abort(new Error("the console is closing"));
    this.#listeners.clear();
  }

  /** The record of a job, created empty on first sight (and the store bounded). */
  #job(jobId: string): JobInfo {
    let job = this.#jobs.get(jobId);
    if (job) return job;
    job = { job_id: jobId, tool: null, state: null, progress: null, version: null, timeline: [] };
    this.#jobs.set(jobId, job);
    if (this.#jobs.size > MAX_JOBS) {
      for (const [id, old] of this.#jobs) {
        if (this.#jobs.size <= MAX_JOBS) break;
        if (old.state !== null && isFinal(old.state)) this.#jobs.delete(id);
      }
    }
    return job;
  }

  /** Applies one poll's outcome to a job's record and tells listeners. */
  #observe(jobId: string, outcome: Outcome): void {
    const job = this.#job(jobId);
    if (outcome.kind !== "answer") {
      job.problem = outcome;
      this.#emit({ type: "job", data: job });
      return;
    }
    delete job.problem;
    const { status, result } = outcome;
    const at = Date.now();
    if (status === "running") {
      const state = result?.state === "queued" ? "queued" : "running";
      const version = typeof result?.version === "number" ? result.version : null;
      const progress = result?.progress ?? null;
      const news = job.timeline.length === 0 || job.state !== state || job.version !== version;
      job.state = state;
      job.version = version;
      job.progress = progress;
      if (typeof result?.note === "string") job.note = result.note;
      else delete job.note;
      if (news) this.#point(job, { at_ms: at, state, progress, version });
    } else if (status === "done") {
      job.state = "done";
      job.result = result ?? {};
      job.finished_ms ??= at;
      this.#point(job, { at_ms: at, state: "done", progress: job.progress, version: job.version });
    } else if (status === "error" && typeof result?.job_id === "string") {
      // A job that ended in error names itself; a refusal of the poll (unknown_job, rate_limited) does not.
      const code = outcome.code ?? "error";
      job.state = code === "cancelled" ? "cancelled" : "error";
      job.error = {
        code,
        message: outcome.message ?? code,
        ...(outcome.details === undefined ? {} : { details: outcome.details }),
      };
      job.finished_ms ??= at;
      this.#point(job, { at_ms: at, state: job.state, progress: job.progress, version: job.version });
    } else {
      job.problem = outcome;
    }
    this.#emit({ type: "job", data: job });
  }

  #point(job: JobInfo, point: JobInfo["timeline"][number]): void {
    const last = job.timeline.at(-1);
    if (last && last.state === point.state && last.version === point.version && isFinal(point.state)) return;
    job.timeline.push(point);
    if (job.timeline.length > MAX_TIMELINE) job.timeline.splice(1, 1); // keep the first sighting
  }

  /** Follows an open job with long polls until it ends (a bounded number at once; the rest wait their turn). */
  #watch(jobId: string): void {
    if (this.#watching.has(jobId) || this.#waitingToWatch.includes(jobId) || this.#closed.signal.aborted) return;
    if (this.#watching.size >= MAX_WATCHERS) {
      this.#waitingToWatch.push(jobId);
      return;
    }
    this.#watching.add(jobId);
    void this.#follow(jobId).finally(() => {
      this.#watching.delete(jobId);
      const next = this.#waitingToWatch.shift();
      if (next !== undefined) this.#watch(next);
    });
  }

  async #follow(jobId: string): Promise<void> {
    let failures = 0;
    while (!this.#closed.signal.aborted) {
      const job = this.#job(jobId);
      if (job.state !== null && isFinal(job.state)) return;
      const wait = job.version === null ? undefined : { waitMs: this.#options.longPollMs, version: job.version };
      const outcome = await this.#poll(jobId, wait);
      if (this.#closed.signal.aborted) return;
      this.#observe(jobId, outcome);
      const refused = outcome.kind !== "answer" || (outcome.status === "error" && typeof outcome.result?.job_id !== "string");
      if (!refused) {
        failures = 0;
        continue;
      }
      // unknown_job: gone (retention, or never this client's). Anything else: back off, and give up after a while.
      if (outcome.kind === "answer" && outcome.code === "unknown_job") return;
      if (++failures >= 5) return;
      const retry = outcome.kind === "answer" ? retryAfterMs(outcome.details) : undefined;
      await sleep(retry ?? 1000 * 2 ** failures, this.#closed.signal).catch(() => undefined);
    }
  }
}

/** What became of a request: its verified answer, or why there is none. */
async function settle(request: Promise<ResponseMessage>): Promise<Outcome> {
  try {
    return answerOf(await request);
  } catch (error) {
    return failureOf(error);
  }
}

function isFinal(state: JobState): boolean {
  return state === "done" || state === "error" || state === "cancelled";
}

function retryAfterMs(details: Json | undefined): number | undefined {
  if (details === null || typeof details !== "object" || Array.isArray(details)) return undefined;
  const ms = details.retry_after_ms;
  return typeof ms === "number" ? Math.min(Math.max(ms, 100), 60_000) : undefined;
}

function isToolInfo(value: unknown): value is ToolInfo {
  if (!isJsonObject(value as JsonObject)) return false;
  const t = value as Record<string, unknown>;
  return (
    typeof t.name === "string" &&
    typeof t.description === "string" &&
    (t.kind === "sync" || t.kind === "job") &&
    isJsonObject(t.input_schema as JsonObject) &&
    isJsonObject(t.output_schema as JsonObject)
  );
}

/** A `list_*` answer's result is already given apart (tools, jobs): the outcome keeps only its status. */
function withoutBulk(outcome: Outcome): Outcome {
  return outcome.kind === "answer" && outcome.status === "ok" ? { ...outcome, result: null } : outcome;
}

/** JSON the page can take: an integer past 2^53 (kept exact by the client) as its digits. */
function toJson(value: unknown): Json {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v);
    return out;
  }
  return value as Json;
}

/** A verified response as the page sees it. */
export function answerOf(response: ResponseMessage): Outcome {
  const result = response.result === null ? null : (toJson(response.result) as JsonObj);
  if (response.status !== "error") return { kind: "answer", status: response.status, result };
  const text = response.error ?? "internal: error response without a message";
  const colon = text.indexOf(": ");
  const code = typeof result?.code === "string" ? result.code : colon > 0 ? text.slice(0, colon) : "internal";
  const outcome: Outcome = { kind: "answer", status: "error", result, code, message: colon > 0 ? text.slice(colon + 2) : text };
  if (result?.details !== undefined) outcome.details = result.details;
  return outcome;
}

/** Why there is no verified answer to show: a refused answer (it failed verification), or none at all. */
export function failureOf(error: unknown): Outcome {
  if (error instanceof SmcpError && error.origin === "local") {
    const message = wireText(error.message, 512);
    // The client rejected what came back (SPEC §3): it is not a result, and nothing of it is shown.
    if (
      error.code === "bad_signature" ||
      error.code === "bad_envelope" ||
      error.code === "wrong_server" ||
      error.code === "stale"
    ) {
      return { kind: "refused", code: error.code, message };
    }
    return { kind: "unreachable", code: error.code, message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "unreachable", code: "unavailable", message: wireText(message, 512) };
}
