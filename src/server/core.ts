import { randomUUID } from "node:crypto";
import { jobAccessFor } from "../jobs/access.js";
import { MemoryJobStore } from "../jobs/memory.js";
import { type JobQueue, LocalJobQueue } from "../jobs/queue.js";
import { JobRunner, type ToolEnvironment } from "../jobs/runner.js";
import type { JobRecord, JobStore } from "../jobs/store.js";
import { canonicalize, type JsonObject, type ParseLimits, parseLossless } from "../protocol/canonical.js";
import { type ErrorCode, httpStatusFor, SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { Keyring, type KeyringOptions } from "../protocol/keyring.js";
import {
  describeIssues,
  type Envelope,
  EnvelopeSchema,
  isJsonObject,
  PROTOCOL_VERSION,
  type ResponseMessage,
  type ResponseStatus,
} from "../protocol/messages.js";
import { signResponse, verifyCanonical } from "../protocol/sign.js";
import { MemoryNonceStore } from "../replay/memory.js";
import type { NonceStore } from "../replay/store.js";
import { builtinTools } from "../tools/builtin.js";
import {
  type JobAccess,
  type ServerInfo,
  StatusReply,
  type Tool,
  type ToolContext,
  type ToolDescription,
} from "../tools/define.js";
import { ToolRegistry } from "../tools/registry.js";

/** What a job queue factory is given. */
export interface JobQueueDeps {
  runner: JobRunner;
  store: JobStore;
  tools: ToolRegistry;
  /** Jobs to run at once in this process (`jobConcurrency`). */
  concurrency: number;
  onError: (error: unknown) => void;
}

/** Where an internal error happened, for the `onError` hook. */
export interface ErrorContext {
  phase: "handler" | "job" | "store" | "internal";
  tool?: string;
  jobId?: string;
}

/** Options for {@link createServer}. */
export interface ServerOptions {
  /** The server id, its secrets and its clients' secrets. */
  keyring: Keyring | KeyringOptions;
  /** Tools to offer. Default: the built-ins (`server_identity`, `batch_sum`, jobs, `list_tools`). */
  tools?: Iterable<Tool>;
  /** Replay cache. Default: in memory. */
  nonceStore?: NonceStore;
  /** Job store. Default: in memory. */
  jobStore?: JobStore;
  /** How jobs are executed. Default: in this process ({@link LocalJobQueue}). */
  jobQueue?: (deps: JobQueueDeps) => JobQueue;
  /** Lease of a running job, ms: a job whose worker stops renewing it is requeued after this long. Default 30,000. */
  jobLeaseMs?: number;
  /** Jobs run at once by the default in-process queue. Default 32. */
  jobConcurrency?: number;
  /** Accepted distance of `ts_ms` from the server clock, in ms. Default 300,000 (±5 min). */
  freshnessMs?: number;
  /** Largest message accepted, in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Parser limits (nesting depth, number length). Defaults per SPEC §2. */
  limits?: ParseLimits;
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

/** Default freshness window: ±300 s. */
export const DEFAULT_FRESHNESS_MS = 300_000;
/** Default largest message: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

const NO_DETAILS = undefined;

/**
 * The transport-agnostic server: `handle(bytes)` runs SPEC §3 in order
 * (shape → client → signature → server_id → freshness → nonce → tool →
 * args → run → output → sign) and always resolves to a signed response.
 */
export class SmcpServer {
  readonly keyring: Keyring;
  readonly tools: ToolRegistry;
  readonly info: ServerInfo;
  readonly jobStore: JobStore;
  readonly nonceStore: NonceStore;
  readonly #queue: JobQueue;
  readonly #runner: JobRunner;
  readonly #env: ToolEnvironment;
  readonly #freshnessMs: number;
  readonly #maxBytes: number;
  readonly #limits: ParseLimits;
  readonly #now: () => number;
  readonly #onError: ((error: unknown, context: ErrorContext) => void) | undefined;
  readonly #shutdown = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(options: ServerOptions) {
    this.keyring = options.keyring instanceof Keyring ? options.keyring : new Keyring(options.keyring);
    this.tools = new ToolRegistry(options.tools ?? builtinTools);
    this.#freshnessMs = positive(options.freshnessMs ?? DEFAULT_FRESHNESS_MS, "freshnessMs");
    this.#maxBytes = positive(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, "maxMessageBytes");
    this.#limits = options.limits ?? {};
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError;
    this.info = Object.freeze({
      id: this.keyring.serverId,
      fingerprint: this.keyring.signingKey.kid,
      capabilities: {
        async: true,
        stateless: true,
        protocol: PROTOCOL_VERSION,
        cancel: true,
        progress: true,
        idempotency: true,
        ...options.capabilities,
      },
    });
    this.nonceStore = options.nonceStore ?? new MemoryNonceStore({ now: this.#now });
    this.jobStore = options.jobStore ?? new MemoryJobStore({ now: this.#now });
    this.#env = {
      server: this.info,
      tools: () => this.tools.describe(),
      // Read lazily: the queue is made after this environment.
      jobsFor: (clientId) => jobAccessFor(this.jobStore, this.#queue, clientId),
    };
    this.#runner = new JobRunner({
      store: this.jobStore,
      tools: this.tools,
      env: this.#env,
      workerId: options.workerId ?? `smcp-${randomUUID().slice(0, 8)}`,
      onError: (error, ctx) => this.#report(error, { phase: "job", ...ctx }),
      leaseMs: options.jobLeaseMs,
      now: this.#now,
    });
    this.#queue = options.jobQueue
      ? options.jobQueue({
          runner: this.#runner,
          store: this.jobStore,
          tools: this.tools,
          concurrency: options.jobConcurrency ?? 32,
          onError: (error) => this.#report(error, { phase: "job" }),
        })
      : new LocalJobQueue({
          runner: this.#runner,
          concurrency: options.jobConcurrency ?? 32,
          onError: (error) => this.#report(error, { phase: "job" }),
        });
  }

  /** Handles one request message (text or UTF-8 bytes). Never throws; never rejects. */
  async handle(input: string | Uint8Array): Promise<HandleResult> {
    let requestId = "";
    try {
      if (byteLengthExceeds(input, this.#maxBytes)) {
        return this.#fail(requestId, "too_large", `the message exceeds ${this.#maxBytes} bytes`);
      }
      // 1. Shape: lossless parse (canonical form from the message's own text), then the strict schema.
      let parsed: ReturnType<typeof parseLossless>;
      try {
        parsed = parseLossless(input, { ...this.#limits, omitTopLevelKey: "signature" });
      } catch (error) {
        return this.#fail(requestId, "bad_envelope", `not acceptable JSON: ${(error as Error).message}`);
      }
      if (isJsonObject(parsed.value) && typeof parsed.value.request_id === "string") requestId = parsed.value.request_id;
      // A strict fast path for the common case; the zod schema decides (and explains) everything else.
      let env = plainEnvelope(parsed.value);
      if (!env) {
        const shape = EnvelopeSchema.safeParse(parsed.value);
        if (!shape.success) {
          return this.#fail(requestId, "bad_envelope", "the envelope does not match mcp/0.1", describeIssues(shape.error));
        }
        env = shape.data;
      }
      // 2. Known client; 3. signature against each of its live keys.
      const keys = this.keyring.clientKeys(env.client_id);
      if (!keys) return this.#fail(requestId, "unknown_client", "unknown client_id");
      if (!verifyCanonical(keys, parsed.canonical, env.signature)) {
        return this.#fail(requestId, "bad_signature", "signature does not verify");
      }
      // 4. Addressed to us; 5. fresh.
      if (env.server_id !== this.keyring.serverId) return this.#fail(requestId, "wrong_server", "envelope is for another server");
      const now = this.#now();
      const ts = Number(env.ts_ms);
      if (!(Math.abs(now - ts) <= this.#freshnessMs)) {
        return this.#fail(requestId, "stale", `ts_ms is more than ${this.#freshnessMs} ms from the server clock`);
      }
      // 6. Nonce, reserved only now that the envelope is authentic and fresh. Store down: fail closed.
      let fresh: boolean;
      try {
        fresh = await this.nonceStore.reserve(env.client_id, env.nonce, ts + this.#freshnessMs + 1);
      } catch (error) {
        return this.#storeFailure(requestId, error);
      }
      if (!fresh) return this.#fail(requestId, "replay", "nonce already used");
      return await this.#dispatch(env, requestId);
    } catch (error) {
      this.#report(error, { phase: "internal" });
      return this.#fail(requestId, "internal", "internal error");
    }
  }

  /** A signed error response for a request refused before `handle` (used by transports: wrong method, too large...). */
  reject(code: ErrorCode, message: string): HandleResult {
    return this.#fail("", code, message);
  }

  /** Stops the job queue and closes the stores. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#shutdown.abort(new Error("server shutting down"));
      await this.#queue.close();
      await Promise.allSettled([this.jobStore.close(), this.nonceStore.close()]);
    })();
    return this.#closed;
  }

  async #dispatch(env: Envelope, requestId: string): Promise<HandleResult> {
    // 7. Tool exists; 8. args valid.
    const tool = this.tools.get(env.tool);
    if (!tool) return this.#fail(requestId, "unknown_tool", `no tool '${env.tool}'`);
    const args = tool.input.safeParse(env.args);
    if (!args.success)
      return this.#fail(requestId, "bad_args", `arguments do not match '${tool.name}'`, describeIssues(args.error));
    const ctx = new RequestContext(env.client_id, requestId, this.#shutdown.signal, this.#env);
    // 9. Run.
    if (tool.kind === "job") return this.#startJob(tool, args.data, ctx);
    let output: unknown;
    try {
      output = await runWithTimeout(tool, args.data, ctx);
    } catch (error) {
      return this.#toolFailure(requestId, tool.name, error);
    }
    if (output instanceof StatusReply) {
      const code = output.error?.code ?? "internal";
      return this.#reply(requestId, output.status, output.result, output.error ? `${code}: ${output.error.message}` : null, 200);
    }
    // 10. Output valid; 11. sign.
    const checked = tool.output.safeParse(output);
    if (!checked.success || !isJsonObject(checked.data)) {
      this.#report(checked.success ? new Error("tool output is not a JSON object") : checked.error, {
        phase: "handler",
        tool: tool.name,
      });
      return this.#fail(requestId, "bad_output", `the output of '${tool.name}' does not match its schema`);
    }
    return this.#reply(requestId, "ok", checked.data, null, 200);
  }

  async #startJob(tool: Tool, args: unknown, ctx: ToolContext): Promise<HandleResult> {
    const { requestId, clientId } = ctx;
    if (!isJsonObject(args)) return this.#fail(requestId, "bad_args", "job arguments must be an object");
    const idempotencyKey = typeof args.idempotency_key === "string" ? args.idempotency_key : undefined;
    let job: JobRecord | undefined;
    try {
      const created = await this.jobStore.create({ id: randomUUID(), clientId, tool: tool.name, args, idempotencyKey });
      job = created.job;
      if (!created.created) {
        if (canonicalize(job.args) !== canonicalize(args)) {
          return this.#fail(requestId, "bad_args", "idempotency_key was already used with different arguments", {
            reason: "idempotency_conflict",
            job_id: job.id,
          });
        }
        return this.#reply(requestId, "accepted", { job_id: job.id }, null, 200);
      }
      await this.#queue.enqueue(job);
      return this.#reply(requestId, "accepted", { job_id: job.id }, null, 200);
    } catch (error) {
      // Stored but not dispatched: end it, so it does not sit queued forever (best effort; the store may be down too).
      if (job !== undefined) {
        await this.jobStore
          .finish(job.id, { state: "error", error: { code: "unavailable", message: "the job could not be queued" } })
          .catch(() => undefined);
      }
      return this.#storeFailure(requestId, error);
    }
  }

  #toolFailure(requestId: string, tool: string, error: unknown): HandleResult {
    if (error instanceof SmcpError) return this.#fail(requestId, error.code, error.message, error.details);
    this.#report(error, { phase: "handler", tool });
    return this.#fail(requestId, "tool_failed", `'${tool}' failed`);
  }

  #storeFailure(requestId: string, error: unknown): HandleResult {
    if (error instanceof SmcpError) return this.#fail(requestId, error.code, error.message, error.details);
    this.#report(error, { phase: "store" });
    return this.#fail(requestId, "unavailable", "a store the server needs is unavailable; retry later");
  }

  #fail(requestId: string, code: ErrorCode, message: string, details: unknown = NO_DETAILS): HandleResult {
    const result: JsonObject = details === undefined ? { code } : { code, details: toJsonDetails(details) };
    return this.#reply(requestId, "error", result, `${code}: ${message}`, httpStatusFor(code));
  }

  #reply(
    requestId: string,
    status: ResponseStatus,
    result: JsonObject | null,
    error: string | null,
    httpStatus: number,
  ): HandleResult {
    const fields = {
      request_id: requestId,
      ts_ms: this.#now(),
      ok: status !== "error",
      server_id: this.keyring.serverId,
      status,
      result,
      error,
    };
    let signed: ReturnType<typeof signResponse>;
    try {
      signed = signResponse(fields, this.keyring.signingKey);
    } catch (error) {
      // The result held something that is not JSON (a Date, NaN...): that is the tool's bad output.
      if (status === "error") throw error;
      this.#report(error, { phase: "handler" });
      return this.#fail(requestId, "bad_output", "the tool's output is not JSON");
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

/** Creates a transport-agnostic server. Wrap it with `createHttpHandler` / `serveHttp` for HTTP. */
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
    private readonly env: ToolEnvironment,
  ) {}

  get server(): ServerInfo {
    return this.env.server;
  }

  get tools(): () => ToolDescription[] {
    return this.env.tools;
  }

  get jobs(): JobAccess {
    this.#jobs ??= this.env.jobsFor(this.clientId);
    return this.#jobs;
  }

  /** The same context with another signal (a sync tool's timeout). */
  withSignal(signal: AbortSignal): RequestContext {
    return new RequestContext(this.clientId, this.requestId, signal, this.env);
  }
}

async function runWithTimeout(tool: Tool & { kind: "sync" }, args: unknown, ctx: RequestContext): Promise<unknown> {
  if (tool.timeoutMs === undefined) return tool.handler(args, ctx);
  const controller = new AbortController();
  const signal = AbortSignal.any([ctx.signal, controller.signal]);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new SmcpError("tool_failed", `'${tool.name}' timed out after ${tool.timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, tool.timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve(tool.handler(args, ctx.withSignal(signal))), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function toJsonDetails(details: unknown): JsonObject[keyof JsonObject] {
  try {
    canonicalize(details);
    return details as JsonObject[keyof JsonObject];
  } catch {
    return null;
  }
}

const ENVELOPE_KEYS = 9;
const shortId = (v: unknown): v is string => typeof v === "string" && v.length <= 256;

/**
 * The envelope if it is plainly valid: exactly the nine fields, each of the
 * simplest accepted type (a narrower test than {@link EnvelopeSchema}, so
 * whatever it accepts the schema accepts too). Undefined means "ask the schema".
 */
function plainEnvelope(value: unknown): Envelope | undefined {
  if (!isJsonObject(value)) return undefined;
  let keys = 0;
  for (const _ in value) keys++;
  if (keys !== ENVELOPE_KEYS) return undefined;
  const { v, request_id, ts_ms, client_id, server_id, tool, args, nonce, signature } = value;
  if (v !== PROTOCOL_VERSION || typeof signature !== "string" || !isJsonObject(args)) return undefined;
  if (!(shortId(request_id) && shortId(client_id) && shortId(server_id) && shortId(tool) && shortId(nonce) && nonce !== ""))
    return undefined;
  if (typeof ts_ms !== "number" || !Number.isInteger(ts_ms)) return undefined;
  return value as Envelope;
}

function byteLengthExceeds(input: string | Uint8Array, max: number): boolean {
  if (typeof input !== "string") return input.byteLength > max;
  // A UTF-16 unit is at most 3 UTF-8 bytes: only count when it could matter.
  return input.length > max || (input.length * 3 > max && Buffer.byteLength(input, "utf8") > max);
}

function positive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0)) throw new SmcpUsageError(`${name} must be a positive number of ms/bytes`);
  return value;
}
