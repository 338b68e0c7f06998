import { randomUUID } from "node:crypto";
import type { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { isErrorCode, SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { oneIssue, zodIssueDetails } from "../protocol/issues.js";
import { callerKeys } from "../protocol/keyring.js";
import type { Key, SecretsInput } from "../protocol/keys.js";
import { isJsonObject, MAX_WAIT_MS, RESPONSE_FIELDS, type ResponseMessage, ResponseSchema } from "../protocol/messages.js";
import { parseLossless } from "../protocol/parse.js";
import { signRequest, verifyCanonical } from "../protocol/sign.js";
import type { Tool } from "../tools/define.js";
import { followAbort, sleep } from "../util/abort.js";
import {
  activeCarrier,
  context,
  durationHistogram,
  failSpan,
  trace as otelTrace,
  ROOT_CONTEXT,
  SpanKind,
  spansOff,
  type TraceCarrier,
  tracer,
} from "../util/trace.js";
import type { Transport, TransportAnswer } from "./transport.js";

/** Options for {@link createClient}. */
export interface ClientOptions {
  clientId: string;
  /** This client's key(s): HMAC secrets or an `ed25519-secret:` private key; the first signs. */
  clientSecret: SecretsInput;
  /** The server this client talks to; responses from another server id are refused. */
  serverId: string;
  /**
   * The server's key(s) a response must verify with: its pinned `ed25519:`
   * public key(s), or its HMAC secret(s) — of the client's own algorithm.
   */
  serverKey?: SecretsInput;
  /** The former name of `serverKey`, still accepted. */
  serverSecret?: SecretsInput;
  transport: Transport;
  /** Accepted distance of a response's `ts_ms` from this clock, in ms. Default 300,000. */
  freshnessMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Sees every verified response with the body it came in (tracing, or printing it as received). */
  onResponse?: (response: ResponseMessage, body: string | Uint8Array) => void;
  /**
   * How long one long poll may wait (`poll_job` `wait_ms`, SPEC §8), used
   * when the server advertises `capabilities.long_poll`; keep it below the
   * transport's timeout. 0: always poll with backoff. Default 20,000.
   */
  longPollMs?: number;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  /**
   * On a `rate_limited` answer, wait its `retry_after_ms` and send again
   * (a new envelope), at most this many times. Default 0 for `request`/`call`, 5 for waits.
   */
  rateLimitRetries?: number;
  /** Told before each such retry. */
  onRateLimited?: (retryAfterMs: number) => void;
}

/** Options for {@link SmcpClient.callAndWait}. */
export interface WaitOptions extends CallOptions {
  /** Give up (and throw `timeout`) after this long, in ms. Default: no limit. */
  timeoutMs?: number;
  /** First pause between polls, in ms. Default 200. */
  pollIntervalMs?: number;
  /** Longest pause between polls, in ms (the pause grows by half each poll). Default 2,000. */
  maxPollIntervalMs?: number;
  /** Called with each progress report the job publishes (and the whole `running` answer, e.g. its `note`). */
  onProgress?: (progress: JsonObject | null, state: "queued" | "running", answer: JsonObject) => void;
  /** Called once with the job id, as soon as the job is accepted. */
  onAccepted?: (jobId: string) => void;
  /** Cancel the job on the server when the wait is aborted or times out. Default true. */
  cancelOnAbort?: boolean;
  /**
   * The job's version this caller has seen (1 right after `accepted`): long
   * polls then wait for anything newer. Unknown: the first poll answers at once.
   */
  version?: number;
}

/** A built, signed envelope: the message and the exact body to send. */
export interface BuiltEnvelope {
  envelope: JsonObject & { request_id: string; signature: string };
  body: string;
}

/** The arguments a tool definition takes (its zod input). */
export type ToolArgs<T> = T extends Tool<infer I, z.ZodType> ? z.input<I> : never;
/** What a tool definition returns (its zod output). */
export type ToolOutput<T> = T extends Tool<z.ZodType, infer O> ? z.output<O> : never;
/** What `call` returns: a sync tool's result, or a job tool's `{job_id}` (wait for it with `waitForJob`, or use `callAndWait`). */
/** What `call` answers for a tool definition: a job tool's `{ job_id }`, a sync tool's output. */
export type ToolResult<T> = T extends { kind: "job" } ? { job_id: string } : ToolOutput<T>;

/**
 * Signs envelopes, sends them through a transport and accepts an answer only
 * per SPEC §3: valid shape, signature by the server's key, the request's
 * `request_id`, the expected `server_id`, a fresh `ts_ms`. Anything else is
 * an {@link SmcpError} with `origin: "local"` carrying what was received —
 * never a result.
 */
export class SmcpClient {
  readonly clientId: string;
  readonly serverId: string;
  readonly #signingKey: Key;
  readonly #serverKeys: readonly Key[];
  readonly #transport: Transport;
  readonly #freshnessMs: number;
  readonly #now: () => number;
  readonly #onResponse: ClientOptions["onResponse"];
  readonly #longPollMs: number;
  #longPoll: Promise<boolean> | undefined;

  constructor(options: ClientOptions) {
    if (!options.clientId) throw new SmcpUsageError("clientId is required (for example `--client-id my-agent`)");
    if (!options.serverId) throw new SmcpUsageError("serverId is required (for example `--server-id my-server`)");
    this.clientId = options.clientId;
    this.serverId = options.serverId;
    if (options.serverKey !== undefined && options.serverSecret !== undefined) {
      throw new SmcpUsageError("give serverKey or serverSecret (its former name), not both");
    }
    const serverKey = options.serverKey ?? options.serverSecret;
    if (serverKey === undefined) {
      throw new SmcpUsageError("serverKey is required: the server's ed25519: public key, or its HMAC secret");
    }
    const keys = callerKeys({
      clientId: options.clientId,
      serverId: options.serverId,
      clientSecret: options.clientSecret,
      serverKey,
    });
    this.#signingKey = keys.signingKey;
    this.#serverKeys = keys.serverKeys;
    this.#transport = options.transport;
    this.#freshnessMs = options.freshnessMs ?? 300_000;
    this.#now = options.now ?? Date.now;
    this.#onResponse = options.onResponse;
    this.#longPollMs = Math.min(options.longPollMs ?? 20_000, MAX_WAIT_MS);
  }

  /** Builds and signs an envelope without sending it. */
  buildEnvelope(tool: string, args: JsonObject = {}): BuiltEnvelope {
    const fields = {
      request_id: randomUUID(),
      ts_ms: this.#now(),
      client_id: this.clientId,
      server_id: this.serverId,
      tool,
      args,
      nonce: randomUUID(),
    };
    const signed = signRequest(fields, this.#signingKey);
    return { envelope: signed.message, body: signed.body };
  }

  /** Sends a signed envelope and returns the verified response, whatever its status. */
  request(tool: string, args: JsonObject = {}, options: CallOptions = {}): Promise<ResponseMessage> {
    // Without retries (the default) the call is #send's own promise: each async frame between a caller and the
    // answer is a resumption per call, measurable at this size (BENCHMARKS.md, client side).
    const retries = options?.rateLimitRetries ?? 0;
    // Anything but a whole count from 0 up (or Infinity) is a caller's mistake, told as one: NaN would otherwise
    // mean "no retries" silently, and 1.5 or "3" something else again.
    if (!(typeof retries === "number" && retries >= 0 && (Number.isInteger(retries) || retries === Number.POSITIVE_INFINITY))) {
      return Promise.reject(new SmcpUsageError("rateLimitRetries must be a whole number from 0 up (or Infinity)"));
    }
    const given = options ?? {};
    return retries > 0 ? this.#retrying(tool, args, given, retries) : this.#send(tool, args, given);
  }

  async #retrying(tool: string, args: JsonObject, options: CallOptions, retries: number): Promise<ResponseMessage> {
    for (let left = retries; ; left--) {
      const response = await this.#send(tool, args, options);
      const wait = retryAfter(response);
      if (wait === undefined || left <= 0) return response;
      options.onRateLimited?.(wait);
      await sleep(wait, options.signal);
    }
  }

  /** One call in a CLIENT span (a no-op without an OTel SDK); its context goes beside the message (SPEC §10). */
  async #send(tool: string, args: JsonObject, options: CallOptions): Promise<ResponseMessage> {
    const started = performance.now();
    const parent = context.active();
    // No SDK and nothing active: the span would be a no-op, so none is made (nor a context switch).
    const span = spansOff(false) ? undefined : tracer().startSpan(`tools/call ${tool}`, { kind: SpanKind.CLIENT }, parent);
    const recording = span?.isRecording() === true;
    if (span && recording) {
      span.setAttribute("mcp.method.name", "tools/call");
      span.setAttribute("gen_ai.operation.name", "execute_tool");
      span.setAttribute("gen_ai.tool.name", tool);
      span.setAttribute("smcp.client.id", this.clientId);
    }
    let errorType: string | undefined;
    try {
      const { envelope, body } = this.buildEnvelope(tool, args);
      const sendOptions: { signal?: AbortSignal; trace?: TraceCarrier } = {};
      if (options.signal) sendOptions.signal = options.signal;
      let answer: TransportAnswer;
      if (span) {
        const trace = activeCarrier(otelTrace.setSpan(ROOT_CONTEXT, span));
        if (trace) sendOptions.trace = trace;
        answer = await context.with(otelTrace.setSpan(parent, span), () => this.#transport.send(body, sendOptions));
      } else {
        answer = await this.#transport.send(body, sendOptions);
      }
      const response = this.#verified(answer, envelope.request_id);
      if (response.status === "error") errorType = String(response.result?.code ?? "error");
      if (span && recording) {
        span.setAttribute("smcp.request.id", response.request_id);
        span.setAttribute("smcp.status", response.status);
        const jobId = response.result?.job_id;
        if (typeof jobId === "string") span.setAttribute("smcp.job.id", jobId);
      }
      return response;
    } catch (error) {
      errorType = error instanceof SmcpError ? error.code : error instanceof Error ? error.name : "error";
      throw error;
    } finally {
      if (span) {
        if (errorType !== undefined && recording) failSpan(span, errorType);
        span.end();
      }
      const attributes: Record<string, string> = { "mcp.method.name": "tools/call", "gen_ai.tool.name": tool };
      if (errorType !== undefined) attributes["error.type"] = errorType;
      durationHistogram("mcp.client.operation.duration", "Duration of smcp calls as the client saw them").record(
        (performance.now() - started) / 1000,
        attributes,
      );
    }
  }

  /** The verified response to the request `requestId`, told to `onResponse`; an unsigned 404 says the URL is wrong. */
  #verified(answer: TransportAnswer, requestId: string): ResponseMessage {
    let response: ResponseMessage;
    try {
      response = this.verifyResponse(answer.body, requestId);
    } catch (error) {
      // An unsigned 404 is a wrong URL, not a forgery: say so.
      if (answer.status === 404 && error instanceof SmcpError && error.code === "bad_envelope") {
        throw new SmcpError("bad_envelope", "no smcp endpoint at this URL (HTTP 404); `smcp serve` listens on /mcp", {
          received: error.received,
          origin: "local",
        });
      }
      throw error;
    }
    this.#onResponse?.(response, answer.body);
    return response;
  }

  /**
   * Calls a tool and returns its result. Pass a tool definition instead of a
   * name for typed args and result. A verified error response throws
   * {@link SmcpError} with `origin: "remote"`.
   */
  async call<T extends Tool>(tool: T, args: ToolArgs<T>, options?: CallOptions): Promise<ToolResult<T>>;
  async call(tool: string, args?: JsonObject, options?: CallOptions): Promise<JsonObject>;
  async call(tool: string | Tool, args: unknown = {}, options: CallOptions = {}): Promise<unknown> {
    const response = await this.request(typeof tool === "string" ? tool : tool.name, args as JsonObject, options);
    return resultOf(response);
  }

  /**
   * Polls a job once; returns the verified response (`running`, `done` or
   * `error`). With `waitMs` (a server advertising `long_poll`), the server
   * holds the poll until the job ends or reports progress (SPEC §8).
   */
  poll(jobId: string, options: CallOptions & { waitMs?: number; version?: number | undefined } = {}): Promise<ResponseMessage> {
    const args: JsonObject = { job_id: jobId };
    if (options.waitMs) args.wait_ms = options.waitMs;
    if (options.waitMs && options.version !== undefined) args.version = options.version;
    return this.request("poll_job", args, options);
  }

  /** Whether the server holds polls (`capabilities.long_poll`): asked once per client, with `server_identity`. */
  supportsLongPoll(options: CallOptions = {}): Promise<boolean> {
    if (this.#longPollMs <= 0) return Promise.resolve(false);
    this.#longPoll ??= this.call("server_identity", {}, options).then(
      (identity) => isJsonObject(identity.capabilities) && identity.capabilities.long_poll === true,
      (error: unknown) => {
        this.#longPoll = undefined; // a failure is not an answer: ask again next time
        throw error;
      },
    );
    return this.#longPoll;
  }

  /** Cancels a job; returns its state after. */
  async cancel(jobId: string, options: CallOptions = {}): Promise<{ job_id: string; state: string; cancelled: boolean }> {
    return (await this.call("cancel_job", { job_id: jobId }, options)) as { job_id: string; state: string; cancelled: boolean };
  }

  /**
   * Starts a job tool and polls it (with backoff) until it is done; returns
   * the job's result. A job that ends in error throws {@link SmcpError} with
   * the job's code (`tool_failed`, `cancelled`, `timeout`...).
   */
  async callAndWait<T extends Tool>(tool: T, args: ToolArgs<T>, options?: WaitOptions): Promise<ToolOutput<T>>;
  async callAndWait(tool: string, args?: JsonObject, options?: WaitOptions): Promise<JsonObject>;
  async callAndWait(tool: string | Tool, args: unknown = {}, options: WaitOptions = {}): Promise<unknown> {
    const begun = Date.now();
    const name = typeof tool === "string" ? tool : tool.name;
    const { signal, release } = waitSignal(options);
    let started: ResponseMessage;
    try {
      started = await this.request(name, args as JsonObject, {
        signal,
        rateLimitRetries: options.rateLimitRetries ?? 5,
        ...(options.onRateLimited ? { onRateLimited: options.onRateLimited } : {}),
      });
    } catch (error) {
      // Out of time (or called off) before the start was answered: the same codes as a wait cut short.
      if (!signal.aborted) throw error;
      const byCaller = options.signal?.aborted === true;
      throw new SmcpError(byCaller ? "cancelled" : "timeout", `stopped waiting for ${name} to be accepted`, {
        cause: signal.reason,
      });
    } finally {
      release();
    }
    if (started.status === "ok") return resultOf(started); // a sync tool answered at once
    const jobId = started.result?.job_id;
    if (started.status !== "accepted" || typeof jobId !== "string") return resultOf(started);
    options.onAccepted?.(jobId);
    // The wait gets what is left of the whole timeout, so `timeout` and the caller's abort stay apart.
    const left = options.timeoutMs === undefined ? {} : { timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - begun)) };
    // Just accepted: the job is at version 1, so the first long poll waits for anything newer.
    return resultOf(await this.waitForJob(jobId, { ...options, ...left, version: 1 }));
  }

  /**
   * Polls a job with backoff until it ends; returns the final verified
   * response (`done` or `error`). On abort or timeout the job is cancelled on
   * the server (unless `cancelOnAbort: false`) and {@link SmcpError} is thrown:
   * `timeout` when `timeoutMs` ran out, `cancelled` when the caller's own signal aborted.
   */
  async waitForJob(jobId: string, options: WaitOptions = {}): Promise<ResponseMessage> {
    const { signal, release } = waitSignal(options);
    let pause = options.pollIntervalMs ?? 200;
    const maxPause = options.maxPollIntervalMs ?? 2000;
    const call = {
      signal,
      rateLimitRetries: options.rateLimitRetries ?? 5,
      ...(options.onRateLimited ? { onRateLimited: options.onRateLimited } : {}),
    };
    try {
      const longPoll = await this.supportsLongPoll(call);
      // The version of the job this client has seen; unknown: the first poll answers at once.
      let seen = options.version;
      for (;;) {
        signal.throwIfAborted();
        if (!longPoll) await sleep(pause, signal);
        const waiting = longPoll && seen !== undefined;
        const asked = Date.now();
        const polled = await this.poll(jobId, waiting ? { ...call, waitMs: this.#longPollMs, version: seen } : call);
        if (polled.status === "done" || polled.status === "error") return polled;
        const result = polled.result ?? {};
        const state = result.state === "queued" ? "queued" : "running";
        const version = typeof result.version === "number" ? result.version : undefined;
        // An answer with nothing new (the wait ran out, or a server draining for a restart) is not shown again.
        const news = version === undefined || version !== seen;
        if (news) options.onProgress?.(isJsonObject(result.progress) ? result.progress : null, state, result);
        if (!longPoll) pause = Math.min(Math.ceil(pause * 1.5), maxPause);
        else if (version === undefined)
          await sleep(pause, signal); // a long poll without versions: do not spin
        else if (waiting && !news && Date.now() - asked < this.#longPollMs / 2) {
          // Nothing new, long before the wait was up (a server draining for a restart): back off, do not spin.
          await sleep(pause, signal);
          pause = Math.min(Math.ceil(pause * 1.5), maxPause);
        }
        seen = version;
      }
    } catch (error) {
      if (!signal.aborted) throw error;
      if (options.cancelOnAbort !== false) await this.cancel(jobId).catch(() => undefined);
      const byCaller = options.signal?.aborted === true;
      throw new SmcpError(byCaller ? "cancelled" : "timeout", `stopped waiting for job ${jobId}`, { cause: signal.reason });
    } finally {
      release();
    }
  }

  /**
   * Verifies a response body per SPEC §3. Returns the response, or throws
   * {@link SmcpError} (`origin: "local"`, `received` = the body).
   */
  verifyResponse(body: string | Uint8Array, requestId: string): ResponseMessage {
    const reject = (code: "bad_envelope" | "bad_signature" | "wrong_server" | "stale", message: string, details?: unknown) => {
      // Decoded only for a refusal: a verified answer never needs its text twice.
      const received = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
      throw new SmcpError(code, message, { received, origin: "local", details });
    };
    let parsed: ReturnType<typeof parseLossless>;
    try {
      parsed = parseLossless(body, { omitTopLevelKey: "signature" });
    } catch (error) {
      return reject("bad_envelope", `the answer is not a JSON response: ${(error as Error).message}`);
    }
    if (parsed.floatKeys?.includes("ts_ms")) {
      return reject(
        "bad_envelope",
        "the answer's ts_ms is not an integer lexeme",
        oneIssue(["ts_ms"], "invalid_type", RESPONSE_FIELDS),
      );
    }
    const shape = ResponseSchema.safeParse(parsed.value);
    if (!shape.success) {
      return reject("bad_envelope", "the answer is not a signed mcp/0.1 response", zodIssueDetails(shape.error, RESPONSE_FIELDS));
    }
    const response = shape.data;
    if (!verifyCanonical(this.#serverKeys, parsed.canonical, response.signature)) {
      return reject("bad_signature", "the response signature does not verify with the server's key");
    }
    if (response.server_id !== this.serverId) return reject("wrong_server", `the response comes from '${response.server_id}'`);
    if (response.request_id !== requestId) return reject("bad_envelope", "the response answers another request");
    if (!(Math.abs(this.#now() - Number(response.ts_ms)) <= this.#freshnessMs)) {
      return reject("stale", "the response's ts_ms is outside the freshness window");
    }
    return response;
  }
}

/** Creates a client. */
export function createClient(options: ClientOptions): SmcpClient {
  return new SmcpClient(options);
}

/**
 * How long a `rate_limited` answer asks to wait, ms (capped at a minute), or
 * undefined for any other answer. A job that itself ended in an error carries
 * its `job_id`; a refused request does not.
 */
function retryAfter(response: ResponseMessage): number | undefined {
  const result = response.result;
  if (response.status !== "error" || result?.code !== "rate_limited" || "job_id" in result) return undefined;
  const details = result.details;
  const ms = isJsonObject(details) && typeof details.retry_after_ms === "number" ? details.retry_after_ms : 1000;
  return Math.min(Math.max(1, ms), 60_000);
}

/** The result of a verified response, or the {@link SmcpError} it reports. */
export function resultOf(response: ResponseMessage): JsonObject {
  if (response.ok) return response.result ?? {};
  const code = response.result?.code;
  const text = response.error ?? "internal: error response without a message";
  const prefix = text.indexOf(": ");
  const message = prefix >= 0 ? text.slice(prefix + 2) : text;
  throw new SmcpError(isErrorCode(code) ? code : "internal", message, {
    details: response.result?.details,
    received: response,
    origin: "remote",
  });
}

/**
 * The signal a wait runs under: the caller's signal and `timeoutMs`, whichever comes first. `release` once the wait
 * is over: the caller's signal, which may live as long as the app, then holds nothing of it (AbortSignal.any would
 * leave an entry on it per wait on Node 20).
 */
function waitSignal(options: WaitOptions): { signal: AbortSignal; release: () => void } {
  const { timeoutMs } = options;
  // What AbortSignal.timeout accepted; setTimeout would take anything else as 1 ms.
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new SmcpUsageError(`timeoutMs must be an integer from 0 to ${2 ** 31 - 1}`);
  }
  const followed = options.signal ? followAbort(options.signal) : { controller: new AbortController(), unlink: () => {} };
  const { controller } = followed;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
          timeoutMs,
        );
  // As AbortSignal.timeout's timer: a wait alone does not keep the process alive.
  timer?.unref();
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      followed.unlink();
    },
  };
}
