import { setMaxListeners } from "node:events";
import type { CompiledClient } from "../auth/registry.js";
import { compileScopes, type Scopes } from "../auth/scopes.js";
import { MemoryJobStore } from "../backends/memory/jobs.js";
import { MemoryNonceStore } from "../backends/memory/nonces.js";
import type { OpenedStores } from "../backends/open.js";
import type { LongPollLimits } from "../jobs/access.js";
import { createJobEngine, type ErrorContext, type JobEngine } from "../jobs/engine.js";
import type { NonceStore } from "../jobs/nonces.js";
import type { JobQueueFactory } from "../jobs/queue.js";
import type { JobStore } from "../jobs/store.js";
import { canonicalize, hasLoneSurrogate, type JsonObject } from "../protocol/canonical.js";
import { type ErrorCode, httpStatusFor, SmcpError, SmcpUsageError, storeUnavailable, wireText } from "../protocol/errors.js";
import { type IssueDetails, oneIssue, zodIssueDetails } from "../protocol/issues.js";
import { Keyring, type KeyringOptions } from "../protocol/keyring.js";
import type { Key } from "../protocol/keys.js";
import {
  ENVELOPE_FIELDS,
  type Envelope,
  EnvelopeSchema,
  isJsonObject,
  MAX_ID_LENGTH,
  PROTOCOL_VERSION,
  plainEnvelope,
  type ResponseMessage,
  type ResponseStatus,
} from "../protocol/messages.js";
import { type ParseLimits, parseLossless } from "../protocol/parse.js";
import { signResponse, verifyCanonical } from "../protocol/sign.js";
import type { JobAccess, ServerInfo, Tool, ToolContext, ToolDescription } from "../tools/define.js";
import { invokeTool } from "../tools/invoke.js";
import { MAX_WAIT_MS, protocolTools } from "../tools/protocol.js";
import { type RegisteredTool, ToolRegistry } from "../tools/registry.js";
import { ToolRuns } from "../tools/runs.js";
import {
  activeCarrier,
  type Context,
  context,
  contextFrom,
  durationHistogram,
  failSpan,
  trace as otelTrace,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  spansOff,
  type TraceCarrier,
  tracer,
} from "../util/trace.js";
import { ALL_TOOLS, buildSnapshot, type ClientsSnapshot, liveKeys } from "./clients.js";
import { ClientLimiter, type LimitsOptions } from "./limits.js";
import type { LimitReason, ServerObserver } from "./observer.js";

export type { ErrorContext } from "../jobs/engine.js";

/** Options for {@link createServer}. */
export interface ServerOptions {
  /** The server id, its secrets and its clients' secrets. */
  keyring: Keyring | KeyringOptions;
  /**
   * What each client may do (SPEC §9), by client id: `tools:<pattern>`
   * (`*` any run of characters) and `jobs:all`. A client not named here has
   * `["tools:*"]`. A call of a tool its scopes don't allow is `forbidden`.
   */
  scopes?: Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;
  /**
   * The clients from a registry (`compileRegistry`, issue 20): keys with ids and
   * expiry, scopes, limits, disabled. When given, they replace the keyring's
   * clients and `scopes`; `setClients` swaps in another set later.
   */
  clients?: ReadonlyMap<string, CompiledClient>;
  /**
   * Your tools. The protocol tools (`server_identity`, `poll_job`,
   * `cancel_job`, `list_tools`) are always offered besides them; the seed's
   * examples (`demoTools`: `batch_sum`, `start_long_task`) only when given.
   */
  tools?: Iterable<Tool>;
  /**
   * The stores a store URL names (`await openStores(url)` from `smcp/stores`):
   * job store, replay cache, job queue and, for Redis, the shared rate
   * counters. The single options below win over it.
   */
  stores?: OpenedStores;
  /** Replay cache. Default: in memory. */
  nonceStore?: NonceStore;
  /** Job store. Default: in memory. */
  jobStore?: JobStore;
  /** How jobs are dispatched. Default: in this process. `openStores(url).jobQueue` for shared stores. */
  jobQueue?: JobQueueFactory;
  /** Whether this process runs jobs (false: an API replica; workers elsewhere run them). Default true. */
  runJobs?: boolean;
  /** Lease of a running job, ms: a job whose worker stops renewing it is requeued after this long. Default 30,000. */
  jobLeaseMs?: number;
  /** Jobs run at once in this process. Default 32. A job whose handler outlives its timeout keeps its slot until it ends. */
  jobConcurrency?: number;
  /**
   * Runs of one tool that may still be going past their timeout (handlers
   * that ignore their abort signal) before new runs of that tool get
   * `unavailable`. Default 32 (`DEFAULT_MAX_OVERDUE_RUNS`).
   */
  maxOverdueRuns?: number;
  /**
   * Answer a tool's unexpected errors (anything but a `ToolError` or an
   * `SmcpError`) with "the tool failed" instead of their message. Turn it on
   * when tools may throw errors that carry internals (SQL, paths, hosts) and
   * callers are not your own team. Default false (SPEC §5: the message is the caller's to see).
   */
  hideToolErrors?: boolean;
  /** How often this process deletes finished jobs past their retention, ms (0: never). Default 60,000. */
  sweepEveryMs?: number;
  /** Accepted distance of `ts_ms` from the server clock, in ms. Default 300,000 (±5 min). */
  freshnessMs?: number;
  /** Largest message accepted, in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Parser limits (nesting depth, number length). Defaults per SPEC §2. */
  parseLimits?: ParseLimits;
  /**
   * Per-client limits: request rate and burst, open jobs, stored bytes
   * (defaults in `DEFAULT_CLIENT_LIMITS`), with per-client overrides and a
   * shared counter store for replicas (`openStores(url).rateLimiter`).
   */
  limits?: LimitsOptions;
  /** Caps on long polls (`poll_job` with `wait_ms`) held at once, per client and in all. */
  longPoll?: LongPollLimits;
  /** Sees requests, job transitions, store outages and limiter refusals (metrics and logs: `smcp/observe`). */
  observer?: ServerObserver;
  /** Extra capabilities reported by `server_identity`. */
  capabilities?: JsonObject;
  /** Names this process in job records. Default: a random id. */
  workerId?: string;
  /** Clock, for tests. */
  now?: () => number;
  /** Sees internal errors (handler exceptions, store failures). Never sent on the wire. */
  onError?: (error: unknown, context: ErrorContext) => void;
}

/** What {@link SmcpServer.handle} returns: the signed response, its body and HTTP status. */
export interface HandleResult {
  /** HTTP status per SPEC §6. */
  httpStatus: number;
  /** The signed response as canonical JSON: send these bytes as they are. */
  body: string;
  response: ResponseMessage;
}

// The protocol's own tools act on what the client may see, and need no scope.
const PROTOCOL_TOOL_NAMES: ReadonlySet<string> = new Set(protocolTools.map((tool) => tool.name));

/** Default freshness window: ±300 s. */
export const DEFAULT_FRESHNESS_MS = 300_000;
/** Default largest message: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
// How long close() lets drained long polls read the job they answer with before aborting them.
const DRAIN_WAIT_MS = 5_000;
/** Largest error answer (SPEC §5). */
export const MAX_ERROR_BYTES = 16 * 1024;
// Room for details and message inside an error answer; the envelope around them is a few hundred bytes.
const MAX_DETAILS_BYTES = 12 * 1024;

/** Whom an answer goes to: the request id it copies, and the server key that signs it (SPEC §7). */
interface ReplyTo {
  id: string;
  key: Key;
}

/** The capabilities every smcp server reports (`server_identity`), before its own additions. */
export function defaultCapabilities(): JsonObject {
  return {
    async: true,
    stateless: true,
    protocol: PROTOCOL_VERSION,
    cancel: true,
    progress: true,
    idempotency: true,
    long_poll: true,
    max_wait_ms: MAX_WAIT_MS,
  };
}

/**
 * The transport-agnostic server: `handle(bytes)` runs SPEC §3 in order
 * (shape → client → signature → server_id → freshness → nonce → rate →
 * tool → args → run → output → sign) and always resolves to a signed response.
 * Error answers are bounded (at most 16 KiB) and reflect nothing from the
 * request but its `request_id` (SPEC §5).
 */
export class SmcpServer {
  readonly tools: ToolRegistry;
  readonly info: ServerInfo;
  readonly jobStore: JobStore;
  readonly nonceStore: NonceStore;
  readonly #jobs: JobEngine;
  readonly #freshnessMs: number;
  readonly #maxBytes: number;
  readonly #parseLimits: ParseLimits;
  readonly #hideToolErrors: boolean;
  /** The server's own keys and default limits, from which each registry version is built. */
  readonly #base: { keyring: Keyring; limiter: ClientLimiter };
  /** The clients now: swapped whole by `setClients`; a request reads it once, at its start. */
  #clients: ClientsSnapshot;
  /** Tool code running in this process, sync calls and jobs alike (overdue runs counted and capped). */
  readonly runs: ToolRuns;
  readonly #observer: ServerObserver | undefined;
  #storeHealthy = true;
  readonly #now: () => number;
  readonly #onError: ((error: unknown, context: ErrorContext) => void) | undefined;
  readonly #shutdown = new AbortController();
  #closed: Promise<void> | undefined;
  /**
   * Facts `GET /healthz` adds beside `ok` (a followed registry's version and
   * whether it is stale). Never a secret, a client id or a path: anyone may read it.
   */
  healthFacts: JsonObject | undefined;

  constructor(options: ServerOptions) {
    const keyring = options.keyring instanceof Keyring ? options.keyring : new Keyring(options.keyring);
    this.tools = new ToolRegistry([...protocolTools, ...(options.tools ?? [])]);
    this.#freshnessMs = positive(options.freshnessMs ?? DEFAULT_FRESHNESS_MS, "freshnessMs");
    this.#maxBytes = positive(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, "maxMessageBytes");
    this.#parseLimits = options.parseLimits ?? {};
    const stores = options.stores;
    const rateLimiter = options.limits?.rateLimiter ?? stores?.rateLimiter;
    const limiter = new ClientLimiter(rateLimiter ? { ...options.limits, rateLimiter } : options.limits);
    this.#base = { keyring, limiter };
    this.#observer = options.observer;
    this.#hideToolErrors = options.hideToolErrors ?? false;
    const scopes = new Map<string, Scopes>();
    const given = options.scopes instanceof Map ? [...options.scopes] : Object.entries(options.scopes ?? {});
    for (const [clientId, list] of given) {
      if (!keyring.client(clientId))
        throw new SmcpUsageError(`scopes are given for client '${clientId}', which has no keys here`);
      scopes.set(clientId, compileScopes(list, `client '${clientId}'`));
    }
    this.#clients = options.clients
      ? buildSnapshot(this.#base, options.clients, 0)
      : Object.freeze({ version: 0, keyring, scopes, limiter, notAfter: new Map(), heldPolls: new Map() });
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError;
    this.info = Object.freeze({
      id: this.keyring.serverId,
      fingerprint: this.keyring.signingKey.kid,
      capabilities: {
        ...defaultCapabilities(),
        ...options.capabilities,
        // Facts of the keyring (SPEC §7), not overridable: callers pin these keys.
        public_keys: this.keyring.publicKeys(),
        signatures: this.keyring.algorithms(),
      },
    });
    // Every request in flight listens to this signal (a held poll for up to 30 s): many listeners are the norm, not a leak.
    setMaxListeners(0, this.#shutdown.signal);
    this.nonceStore = options.nonceStore ?? stores?.nonceStore ?? new MemoryNonceStore({ now: this.#now });
    this.jobStore = options.jobStore ?? stores?.jobStore ?? new MemoryJobStore({ now: this.#now });
    this.runs = new ToolRuns({
      maxOverdue: options.maxOverdueRuns,
      onOverdue: options.observer?.overdue && ((event) => this.#observe("overdue", event)),
    });
    this.#jobs = createJobEngine({
      store: this.jobStore,
      queue: options.jobQueue ?? stores?.jobQueue,
      tools: this.tools,
      server: this.info,
      execute: options.runJobs,
      workerId: options.workerId,
      leaseMs: options.jobLeaseMs,
      concurrency: options.jobConcurrency,
      runs: this.runs,
      hideToolErrors: options.hideToolErrors,
      now: this.#now,
      longPoll: options.longPoll,
      sweepEveryMs: options.sweepEveryMs,
      onError: (error, context) => this.#report(error, context),
      onJob: options.observer?.job && ((event) => this.#observe("job", event)),
    });
  }

  /** The server's id, its keys and its enabled clients' keys, as of the registry version in force. */
  get keyring(): Keyring {
    return this.#clients.keyring;
  }

  /** The registry version in force (0: the clients given at start). */
  get clientsVersion(): number {
    return this.#clients.version;
  }

  /**
   * Swaps in another set of clients (a registry reload), whole and at once:
   * requests in flight finish under the old set, the next one sees the new.
   * Throws, keeping the old set, when the keyring refuses one of them. The
   * queued and running jobs of a client removed or disabled here are
   * cancelled; the promise resolves to how many once that is done.
   */
  setClients(clients: ReadonlyMap<string, CompiledClient>, version: number = this.#clients.version + 1): Promise<number> {
    const before = this.#clients.keyring;
    this.#clients = buildSnapshot(this.#base, clients, version);
    const gone = before.clientIds().filter((id) => !this.#clients.keyring.client(id));
    return gone.length === 0 ? Promise.resolve(0) : this.#cancelJobsOf(gone);
  }

  /** Cancels every queued and running job of these clients (revoked: nothing of theirs runs on). */
  async #cancelJobsOf(clientIds: readonly string[]): Promise<number> {
    let cancelled = 0;
    for (const clientId of clientIds) {
      const access = this.#jobs.access(clientId);
      for (const state of ["queued", "running"] as const) {
        // Pages of 100 until none is left (or a page cancels nothing: jobs ending by themselves).
        for (let round = 0; round < 1000; round++) {
          let jobs: Awaited<ReturnType<JobStore["list"]>>;
          try {
            jobs = await this.jobStore.list({ clientId, state, limit: 100 });
          } catch (error) {
            this.#report(error, { phase: "store" });
            return cancelled;
          }
          if (jobs.length === 0) break;
          let progressed = false;
          for (const job of jobs) {
            try {
              const after = await access.cancel(job.id);
              if (after?.state === "cancelled") {
                cancelled++;
                progressed = true;
              }
            } catch (error) {
              this.#report(error, { phase: "store" });
            }
          }
          if (!progressed) break;
        }
      }
    }
    return cancelled;
  }

  /**
   * Handles one request message (text or UTF-8 bytes). Never throws; never rejects.
   * `carrier`: the W3C trace context the transport carried beside it (SPEC §10), used as the
   * parent of this request's span only once the envelope has verified; ignored when malformed.
   */
  async handle(input: string | Uint8Array, carrier?: TraceCarrier): Promise<HandleResult> {
    const trace: Trace = {
      clientId: undefined,
      tool: undefined,
      started: performance.now(),
      carrier,
      span: undefined,
      active: undefined,
      off: spansOff(carrier !== undefined),
    };
    const result = await this.#handle(input, trace);
    const durationMs = performance.now() - trace.started;
    const code = result.response.status === "error" ? (result.response.result?.code as ErrorCode | undefined) : undefined;
    endServerSpan(trace, result, code, durationMs);
    if (this.#observer?.request) {
      if (trace.active) context.with(trace.active, () => this.#observeRequest(result, trace, code, durationMs));
      else this.#observeRequest(result, trace, code, durationMs);
    }
    return result;
  }

  async #handle(input: string | Uint8Array, trace: Trace): Promise<HandleResult> {
    // One registry version for the whole request, read once (a reload swaps the reference, never edits it).
    const clients = this.#clients;
    // Signed with the server's first key until the client is known, then in the client's own algorithm.
    const to: ReplyTo = { id: "", key: clients.keyring.signingKey };
    try {
      const size = byteLength(input, this.#maxBytes);
      if (size > this.#maxBytes) return this.#fail(to, "too_large", "the message exceeds the size limit");
      // 1. Shape: lossless parse (canonical form from the message's own text), then the strict schema.
      let parsed: ReturnType<typeof parseLossless>;
      try {
        parsed = parseLossless(input, { ...this.#parseLimits, omitTopLevelKey: "signature" });
      } catch {
        return this.#fail(to, "bad_envelope", "the body is not acceptable JSON (SPEC §2)");
      }
      const value = parsed.value;
      if (isJsonObject(value) && typeof value.request_id === "string" && value.request_id.length <= MAX_ID_LENGTH) {
        to.id = value.request_id;
      }
      if (parsed.floatKeys?.includes("ts_ms")) {
        return this.#fail(
          to,
          "bad_envelope",
          "ts_ms must be an integer lexeme",
          oneIssue(["ts_ms"], "invalid_type", ENVELOPE_FIELDS),
        );
      }
      // A fast path for the common case; the schema decides (and explains) everything else.
      let env = plainEnvelope(value);
      if (!env) {
        const shape = EnvelopeSchema.safeParse(value);
        if (!shape.success) {
          return this.#fail(
            to,
            "bad_envelope",
            "the envelope does not match mcp/0.1",
            zodIssueDetails(shape.error, ENVELOPE_FIELDS),
          );
        }
        env = shape.data;
      }
      // 2. Known client; 3. signature against each of its live keys.
      const client = clients.keyring.client(env.client_id);
      if (!client) return this.#fail(to, "unknown_client", "unknown client_id");
      to.key = client.signer;
      // A key past its not_after verifies nothing: as if it were not there.
      const keys = liveKeys(client.keys, clients.notAfter.get(env.client_id), this.#now());
      const verifyStart = performance.now();
      const verified = verifyCanonical(keys, parsed.canonical, env.signature);
      const verifyEnd = performance.now();
      if (!verified) {
        return this.#fail(to, "bad_signature", "the signature does not verify");
      }
      // 4. Addressed to us; 5. fresh.
      if (env.server_id !== clients.keyring.serverId) return this.#fail(to, "wrong_server", "the envelope is for another server");
      const ts = env.ts_ms;
      if (!(Math.abs(this.#now() - ts) <= this.#freshnessMs)) {
        return this.#fail(to, "stale", "ts_ms is outside the freshness window");
      }
      trace.clientId = env.client_id;
      if (trace.off) return await this.#verified(env, to, size, trace, parsed.floatArgs, clients);
      // Verified: only now may the carried trace context become this request's parent (SPEC §10).
      const active = beginServerSpan(trace, env, verifyStart, verifyEnd);
      return await context.with(active, () => this.#verified(env, to, size, trace, parsed.floatArgs, clients));
    } catch (error) {
      this.#report(error, { phase: "internal" });
      return this.#fail(to, "internal", "internal error");
    }
  }

  /** Steps 6 on, for an envelope that verified: nonce, rate, scope, dispatch. */
  async #verified(
    env: Envelope,
    to: ReplyTo,
    size: number,
    trace: Trace,
    floatArgs: string[] | undefined,
    clients: ClientsSnapshot,
  ): Promise<HandleResult> {
    const ts = env.ts_ms;
    // 6. Nonce, reserved only now that the envelope is authentic and fresh. Store down: fail closed.
    let fresh: boolean;
    try {
      fresh = await childSpan(trace, "smcp.nonce.reserve", () =>
        this.nonceStore.reserve(env.client_id, env.nonce, ts + this.#freshnessMs + 1),
      );
    } catch (error) {
      return this.#storeFailure(to, error);
    }
    if (!fresh) return this.#fail(to, "replay", "the nonce was already used");
    // The client's request rate, charged only now (SPEC §3): a replay or forgery under a client's id
    // costs that client nothing. A refused request has spent its nonce, so a captured copy of it
    // can never run later; the client retries with a fresh envelope.
    let waitMs: number | undefined;
    try {
      waitMs = await clients.limiter.consume(env.client_id);
    } catch (error) {
      return this.#storeFailure(to, error);
    }
    // Both shared stores of this path answered (the replay cache and the rate counters).
    this.#storeUp();
    // 7. Scope (SPEC §9), before the tool is looked up: `forbidden` says nothing of whether such a tool
    // exists, and names only the tool the caller asked for. The protocol's own tools need none.
    const scopes = clients.scopes.get(env.client_id) ?? ALL_TOOLS;
    if (!PROTOCOL_TOOL_NAMES.has(env.tool) && !scopes.mayCall(env.tool)) {
      this.#observe("forbidden", { clientId: env.client_id, tool: this.tools.get(env.tool) ? env.tool : undefined });
      return this.#fail(to, "forbidden", "this client's scopes do not allow this tool", {
        scope: `tools:${wireText(env.tool, 128)}`,
      });
    }
    if (waitMs !== undefined) {
      this.#observe("rateLimited", { clientId: env.client_id, reason: "rate" });
      return this.#fail(to, "rate_limited", "too many requests from this client; retry later", {
        reason: "rate",
        retry_after_ms: waitMs,
      });
    }
    return await this.#dispatch(env, to, size, trace, floatArgs, clients);
  }

  /** A signed error response for a request refused before `handle` (used by transports: wrong method, too large...). */
  reject(code: ErrorCode, message: string, details?: unknown): HandleResult {
    return this.#fail({ id: "", key: this.#clients.keyring.signingKey }, code, message, details);
  }

  /**
   * The first step of a graceful close: held long polls answer at once with
   * the job as it is, so in-flight requests can finish quickly.
   */
  drain(): void {
    this.#jobs.drain();
  }

  /** Long polls held open now. */
  get heldPolls(): number {
    return this.#jobs.heldPolls();
  }

  /**
   * Answers held long polls with the job as it is, then stops the job queue
   * and closes the stores. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#jobs.drain();
      // Before requests are aborted (they would answer `unavailable`): held polls answer now, after one store read.
      await this.#jobs.pollsAnswered(DRAIN_WAIT_MS);
      this.#shutdown.abort(new Error("server shutting down"));
      await this.#jobs.close();
      await Promise.allSettled([this.jobStore.close(), this.nonceStore.close()]);
    })();
    return this.#closed;
  }

  async #dispatch(
    env: Envelope,
    to: ReplyTo,
    size: number,
    trace: Trace,
    floatArgs: string[] | undefined,
    clients: ClientsSnapshot,
  ): Promise<HandleResult> {
    // 7. Tool exists; 8. args valid (an integer argument written as a float lexeme is not).
    const entry = this.tools.entry(env.tool);
    if (!entry) return this.#fail(to, "unknown_tool", "no such tool; list_tools lists them");
    trace.tool = entry.tool.name;
    if (trace.span?.isRecording()) {
      trace.span.updateName(`tools/call ${entry.tool.name}`);
      trace.span.setAttribute("gen_ai.tool.name", entry.tool.name);
    }
    const args = entry.args.check(env.args, size, floatArgs);
    if (!args.ok) return this.#fail(to, "bad_args", "the arguments do not match the tool's input schema", args.details);
    const ctx = new RequestContext(env.client_id, to.id, this.#shutdown.signal, this.#jobs, {
      scopes: clients.scopes.get(env.client_id),
      maxHeldPolls: clients.heldPolls.get(env.client_id),
    });
    // 9. Run; 10. output valid; 11. sign.
    if (entry.tool.kind === "job") return this.#startJob(entry, env.args, ctx, to, clients, trace);
    const invoke = () =>
      invokeTool(entry.tool, args.data, {
        signal: ctx.signal,
        context: (signal) => (signal === ctx.signal ? ctx : ctx.withSignal(signal)),
        report: (error) => this.#report(error, { phase: "handler", tool: entry.tool.name }),
        runs: this.runs,
        hideErrors: this.#hideToolErrors,
      });
    // A user tool's run is its own `execute_tool` span; a protocol tool (poll_job...) works in the request's span.
    const outcome = entry.protocol
      ? await invoke()
      : await childSpan(trace, `execute_tool ${entry.tool.name}`, invoke, entry.tool.name);
    switch (outcome.kind) {
      case "output":
        return this.#reply(to, "ok", outcome.output, null, 200);
      case "reply": {
        const { status, result, error } = outcome.reply;
        return this.#reply(to, status, result, error ? `${error.code}: ${error.message}` : null, 200);
      }
      case "failed":
        // Only the protocol tools use the server's stores; a tool's own `unavailable` (its upstream
        // is down, too many overdue runs) is that tool's answer, not a store outage.
        if (outcome.error.code === "unavailable" && entry.protocol) this.#storeDown(outcome.error);
        if (outcome.error.code === "rate_limited") this.#observeLimit(ctx.clientId, outcome.error.details);
        return this.#fail(to, outcome.error.code, outcome.error.message, outcome.error.details);
      case "aborted":
        return this.#fail(to, "unavailable", "the server is shutting down; retry");
    }
  }

  async #startJob(
    entry: RegisteredTool,
    args: JsonObject,
    ctx: RequestContext,
    to: ReplyTo,
    clients: ClientsSnapshot,
    trace: Trace,
  ): Promise<HandleResult> {
    const { clientId } = ctx;
    try {
      const { job, conflict } = await childSpan(trace, "smcp.job.submit", () =>
        this.#jobs.submit({
          clientId,
          tool: entry.tool.name,
          args,
          idempotencyKey: typeof args.idempotency_key === "string" ? args.idempotency_key : undefined,
          // The job keeps the call's trace context: its run on any worker joins this trace (SPEC §10).
          trace: trace.active && activeCarrier(trace.active)?.traceparent,
          ...clients.limiter.quotas(clientId),
        }),
      );
      if (conflict) {
        return this.#fail(to, "bad_args", "idempotency_key was already used with different arguments", {
          reason: "idempotency_conflict",
          job_id: job.id,
        });
      }
      return this.#reply(to, "accepted", { job_id: job.id }, null, 200);
    } catch (error) {
      return this.#storeFailure(to, error);
    }
  }

  #storeFailure(to: ReplyTo, error: unknown): HandleResult {
    if (!(error instanceof SmcpError)) {
      this.#report(error, { phase: "store" });
      this.#storeDown(error);
    }
    const failure = storeUnavailable(error);
    if (failure.code === "rate_limited") this.#observeLimit(undefined, failure.details);
    return this.#fail(to, failure.code, failure.message, failure.details);
  }

  // Outages are reported once when they start and once when they end, not once per request.
  #storeDown(error: unknown): void {
    if (!this.#storeHealthy) return;
    this.#storeHealthy = false;
    this.#observe("store", { healthy: false, error });
  }

  #storeUp(): void {
    if (this.#storeHealthy) return;
    this.#storeHealthy = true;
    this.#observe("store", { healthy: true });
  }

  #observeLimit(clientId: string | undefined, details: unknown): void {
    const reason = isJsonObject(details) && typeof details.reason === "string" ? details.reason : "store_full";
    this.#observe("rateLimited", { clientId: clientId ?? "", reason: reason as LimitReason });
  }

  #observeRequest(result: HandleResult, trace: Trace, code: ErrorCode | undefined, durationMs: number): void {
    const { response } = result;
    this.#observe("request", {
      requestId: response.request_id,
      clientId: trace.clientId,
      tool: trace.tool,
      code,
      status: response.status,
      httpStatus: result.httpStatus,
      durationMs,
    });
  }

  #observe<K extends keyof ServerObserver>(hook: K, event: Parameters<NonNullable<ServerObserver[K]>>[0]): void {
    try {
      (this.#observer?.[hook] as ((event: unknown) => void) | undefined)?.call(this.#observer, event);
    } catch {
      // A failing metrics or log sink must not fail a request.
    }
  }

  #fail(to: ReplyTo, code: ErrorCode, message: string, details?: unknown): HandleResult {
    const bounded = boundDetails(details);
    const result: JsonObject = bounded === undefined ? { code } : { code, details: bounded };
    // Bounded and escaped in one place (a tool's message may hold a lone surrogate or control characters).
    const text = wireText(message);
    return this.#reply(to, "error", result, `${code}: ${text}`, httpStatusFor(code));
  }

  #reply(to: ReplyTo, status: ResponseStatus, result: JsonObject | null, error: string | null, httpStatus: number): HandleResult {
    const fields = {
      request_id: to.id,
      ts_ms: this.#now(),
      ok: status !== "error",
      server_id: this.#clients.keyring.serverId,
      status,
      result,
      error,
    };
    let signed: ReturnType<typeof signResponse>;
    try {
      signed = signResponse(fields, to.key);
    } catch (error) {
      // The result held something that is not JSON (a Date, NaN...): that is the tool's bad output.
      if (status === "error") throw error;
      this.#report(error, { phase: "handler" });
      return this.#fail(to, "bad_output", "the tool's output is not JSON");
    }
    return { httpStatus, body: signed.body, response: signed.message as ResponseMessage };
  }

  #report(error: unknown, context: ErrorContext): void {
    try {
      this.#onError?.(error, context);
    } catch {
      // A failing logger must not turn into a failed request.
    }
  }
}

/** What a request's observer event and span need that only the middle of `handle` learns. */
interface Trace {
  clientId: string | undefined;
  tool: string | undefined;
  /** performance.now() when the request arrived. */
  started: number;
  /** The trace context the transport carried: a parent only once the envelope verifies. */
  carrier: TraceCarrier | undefined;
  /** The request's SERVER span, once the envelope verified. */
  span: Span | undefined;
  /** The context with that span active. */
  active: Context | undefined;
  /** No SDK and no carried parent: the request's span would be a no-op, so none is made (util/trace.ts spansOff). */
  off: boolean;
}

const SERVER_OPERATION = "mcp.server.operation.duration";

/**
 * The SERVER span of a verified request, started back at the request's arrival, under the carried
 * parent (a forged or unverified header never gets here), with a `smcp.verify` child for the check.
 */
function beginServerSpan(trace: Trace, env: Envelope, verifyStart: number, verifyEnd: number): Context {
  const parent = contextFrom(trace.carrier);
  const span = tracer().startSpan("tools/call", { kind: SpanKind.SERVER, startTime: trace.started }, parent);
  trace.span = span;
  const active = otelTrace.setSpan(parent, span);
  trace.active = active;
  if (span.isRecording()) {
    span.setAttribute("mcp.method.name", "tools/call");
    span.setAttribute("gen_ai.operation.name", "execute_tool");
    span.setAttribute("smcp.client.id", env.client_id);
    span.setAttribute("smcp.request.id", env.request_id);
    tracer().startSpan("smcp.verify", { startTime: verifyStart }, active).end(verifyEnd);
  }
  return active;
}

/** Ends the request's span (when it has one) and records its duration. */
function endServerSpan(trace: Trace, result: HandleResult, code: ErrorCode | undefined, durationMs: number): void {
  if (!trace.off) endSpan(trace, result, code, durationMs);
  const attributes: Record<string, string> = { "mcp.method.name": "tools/call" };
  if (trace.tool) attributes["gen_ai.tool.name"] = trace.tool;
  if (code) attributes["error.type"] = code;
  durationHistogram(SERVER_OPERATION, "Duration of smcp requests as the server handled them").record(
    durationMs / 1000,
    attributes,
  );
}

/**
 * Ends the request's span. A request that never verified gets its span only now, as a root: its
 * carried context is dropped, so only the root sampler decides (it can't force sampling or join a trace).
 */
function endSpan(trace: Trace, result: HandleResult, code: ErrorCode | undefined, durationMs: number): void {
  let span = trace.span;
  if (!span) {
    span = tracer().startSpan("tools/call", { kind: SpanKind.SERVER, startTime: trace.started }, ROOT_CONTEXT);
    if (span.isRecording()) {
      span.setAttribute("mcp.method.name", "tools/call");
      span.setAttribute("gen_ai.operation.name", "execute_tool");
    }
  }
  if (span.isRecording()) {
    const { response } = result;
    span.setAttribute("smcp.status", response.status);
    span.setAttribute("http.response.status_code", result.httpStatus);
    const jobId = response.status === "accepted" ? response.result?.job_id : undefined;
    if (typeof jobId === "string") span.setAttribute("smcp.job.id", jobId);
    if (code) failSpan(span, code);
  }
  span.end(trace.started + durationMs);
}

/** Runs `fn` in a child span of the request's span when that span records; else just runs it. */
function childSpan<T>(trace: Trace, name: string, fn: () => Promise<T>, tool?: string): Promise<T> {
  if (!trace.span?.isRecording()) return fn();
  const span = tracer().startSpan(name, undefined, trace.active);
  if (tool) {
    span.setAttribute("gen_ai.operation.name", "execute_tool");
    span.setAttribute("gen_ai.tool.name", tool);
  }
  return context.with(otelTrace.setSpan(trace.active ?? context.active(), span), fn).then(
    (value) => {
      const failed =
        (value as { kind?: unknown })?.kind === "failed" ? (value as { error?: { code?: string } }).error : undefined;
      if (failed?.code) failSpan(span, failed.code);
      span.end();
      return value;
    },
    (error: unknown) => {
      failSpan(span, error instanceof SmcpError ? error.code : error instanceof Error ? error.name : "error");
      span.end();
      throw error;
    },
  );
}

/** Creates a transport-agnostic server. Wrap it with `createFetchHandler` (or `smcp/http`'s `serveHttp`) for HTTP. */
export function createServer(options: ServerOptions): SmcpServer {
  return new SmcpServer(options);
}

/**
 * What a handler gets for one request. `jobs` is built on first use, so a
 * tool that never looks at jobs costs nothing for it.
 */
class RequestContext implements ToolContext {
  #jobs: JobAccess | undefined;

  constructor(
    readonly clientId: string,
    readonly requestId: string,
    readonly signal: AbortSignal,
    private readonly engine: JobEngine,
    private readonly grant: { scopes: Scopes | undefined; maxHeldPolls: number | undefined },
  ) {}

  get server(): ServerInfo {
    return this.engine.env.server;
  }

  get tools(): () => ToolDescription[] {
    const { scopes } = this.grant;
    if (!scopes) return this.engine.env.tools;
    // list_tools lists only what this client may call (SPEC §9), and the protocol's own tools.
    return () => this.engine.env.tools().filter((t) => PROTOCOL_TOOL_NAMES.has(t.name) || scopes.mayCall(t.name));
  }

  get jobs(): JobAccess {
    this.#jobs ??= this.engine.access(this.clientId, {
      allJobs: this.grant.scopes?.jobsAll === true,
      maxHeldPolls: this.grant.maxHeldPolls,
    });
    return this.#jobs;
  }

  /** The same context with another signal (a sync tool's timeout). */
  withSignal(signal: AbortSignal): RequestContext {
    return new RequestContext(this.clientId, this.requestId, signal, this.engine, this.grant);
  }
}

/**
 * Details an error answer can carry: JSON, and small enough that the answer
 * stays under {@link MAX_ERROR_BYTES}: validation issues are dropped from the
 * end (and counted) until they fit; anything else that does not fit is dropped.
 */
function boundDetails(details: unknown): JsonObject[keyof JsonObject] | undefined {
  if (details === undefined) return undefined;
  let text: string;
  try {
    text = canonicalize(details);
  } catch {
    return null;
  }
  // Details no receiver could read (a lone surrogate) are dropped like any non-JSON.
  if (hasLoneSurrogate(text)) return null;
  if (text.length <= MAX_DETAILS_BYTES) return details as JsonObject[keyof JsonObject];
  if (isIssueDetails(details)) {
    const issues = [...details.issues];
    let more = details.more;
    while (issues.length > 0 && canonicalize({ issues, more }).length > MAX_DETAILS_BYTES) {
      issues.pop();
      more++;
    }
    return { issues, more } as unknown as JsonObject;
  }
  return { truncated: true };
}

function isIssueDetails(value: unknown): value is IssueDetails {
  return isJsonObject(value) && Array.isArray(value.issues) && typeof value.more === "number";
}

/** The message's size in bytes, counted exactly only when it could pass `max`. */
function byteLength(input: string | Uint8Array, max: number): number {
  if (typeof input !== "string") return input.byteLength;
  // A UTF-16 unit is at most 3 UTF-8 bytes.
  return input.length * 3 <= max ? input.length : Buffer.byteLength(input, "utf8");
}

function positive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0)) throw new SmcpUsageError(`${name} must be a positive number of ms/bytes`);
  return value;
}
