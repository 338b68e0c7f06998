import { randomUUID } from "node:crypto";
import type { z } from "zod";
import { type JsonObject, parseLossless } from "../protocol/canonical.js";
import { isErrorCode, SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { type Key, type SecretsInput, toKeys } from "../protocol/keyring.js";
import { describeIssues, isJsonObject, PROTOCOL_VERSION, type ResponseMessage, ResponseSchema } from "../protocol/messages.js";
import { signMessage, verifyCanonical } from "../protocol/sign.js";
import type { Tool } from "../tools/define.js";
import { sleep } from "../util/abort.js";
import type { Transport } from "./transport.js";

/** Options for {@link createClient}. */
export interface ClientOptions {
  clientId: string;
  /** This client's secret(s); the first signs. */
  clientSecret: SecretsInput;
  /** The server this client talks to; responses from another server id are refused. */
  serverId: string;
  /** The server's secret(s); a response must verify with one of them. */
  serverSecret: SecretsInput;
  transport: Transport;
  /** Accepted distance of a response's `ts_ms` from this clock, in ms. Default 300,000. */
  freshnessMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Sees every verified response with the body it came in (tracing, or printing it as received). */
  onResponse?: (response: ResponseMessage, body: string | Uint8Array) => void;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options for {@link SmcpClient.callAndWait}. */
export interface WaitOptions extends CallOptions {
  /** Give up (and throw `timeout`) after this long, in ms. Default: no limit. */
  timeoutMs?: number;
  /** First pause between polls, in ms. Default 200. */
  pollIntervalMs?: number;
  /** Longest pause between polls, in ms (the pause grows by half each poll). Default 2,000. */
  maxPollIntervalMs?: number;
  /** Called with each progress report the job publishes. */
  onProgress?: (progress: JsonObject | null, state: "queued" | "running") => void;
  /** Called once with the job id, as soon as the job is accepted. */
  onAccepted?: (jobId: string) => void;
  /** Cancel the job on the server when the wait is aborted or times out. Default true. */
  cancelOnAbort?: boolean;
}

/** A built, signed envelope: the message and the exact body to send. */
export interface BuiltEnvelope {
  envelope: JsonObject & { request_id: string; signature: string };
  body: string;
}

type ToolArgs<T> = T extends Tool<infer I, z.ZodType> ? z.input<I> : never;
type ToolResult<T> = T extends Tool<z.ZodType, infer O> ? z.output<O> : never;

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

  constructor(options: ClientOptions) {
    if (!options.clientId) throw new SmcpUsageError("clientId is required (for example `--client-id my-agent`)");
    if (!options.serverId) throw new SmcpUsageError("serverId is required (for example `--server-id my-server`)");
    this.clientId = options.clientId;
    this.serverId = options.serverId;
    this.#signingKey = toKeys(options.clientSecret, `client '${options.clientId}'`)[0] as Key;
    this.#serverKeys = toKeys(options.serverSecret, `server '${options.serverId}'`);
    this.#transport = options.transport;
    this.#freshnessMs = options.freshnessMs ?? 300_000;
    this.#now = options.now ?? Date.now;
    this.#onResponse = options.onResponse;
  }

  /** Builds and signs an envelope without sending it. */
  buildEnvelope(tool: string, args: JsonObject = {}): BuiltEnvelope {
    const fields = {
      v: PROTOCOL_VERSION,
      request_id: randomUUID(),
      ts_ms: this.#now(),
      client_id: this.clientId,
      server_id: this.serverId,
      tool,
      args,
      nonce: randomUUID(),
    };
    const signed = signMessage(fields, this.#signingKey);
    return { envelope: signed.message, body: signed.body };
  }

  /** Sends a signed envelope and returns the verified response, whatever its status. */
  async request(tool: string, args: JsonObject = {}, options: CallOptions = {}): Promise<ResponseMessage> {
    const { envelope, body } = this.buildEnvelope(tool, args);
    const answer = await this.#transport.send(body, options.signal ? { signal: options.signal } : {});
    const response = this.verifyResponse(answer.body, envelope.request_id);
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

  /** Polls a job once; returns the verified response (`running`, `done` or `error`). */
  poll(jobId: string, options: CallOptions = {}): Promise<ResponseMessage> {
    return this.request("poll_job", { job_id: jobId }, options);
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
  async callAndWait<T extends Tool>(tool: T, args: ToolArgs<T>, options?: WaitOptions): Promise<ToolResult<T>>;
  async callAndWait(tool: string, args?: JsonObject, options?: WaitOptions): Promise<JsonObject>;
  async callAndWait(tool: string | Tool, args: unknown = {}, options: WaitOptions = {}): Promise<unknown> {
    const signal = waitSignal(options);
    const started = await this.request(typeof tool === "string" ? tool : tool.name, args as JsonObject, { signal });
    if (started.status === "ok") return resultOf(started); // a sync tool answered at once
    const jobId = started.result?.job_id;
    if (started.status !== "accepted" || typeof jobId !== "string") return resultOf(started);
    options.onAccepted?.(jobId);
    const { timeoutMs: _whole, ...rest } = options;
    return resultOf(await this.waitForJob(jobId, { ...rest, signal }));
  }

  /**
   * Polls a job with backoff until it ends; returns the final verified
   * response (`done` or `error`). On abort or timeout the job is cancelled on
   * the server (unless `cancelOnAbort: false`) and {@link SmcpError} `timeout` is thrown.
   */
  async waitForJob(jobId: string, options: WaitOptions = {}): Promise<ResponseMessage> {
    const signal = waitSignal(options);
    let pause = options.pollIntervalMs ?? 200;
    const maxPause = options.maxPollIntervalMs ?? 2000;
    try {
      for (;;) {
        await sleep(pause, signal);
        const polled = await this.poll(jobId, { signal });
        if (polled.status === "done" || polled.status === "error") return polled;
        const result = polled.result ?? {};
        const state = result.state === "queued" ? "queued" : "running";
        options.onProgress?.(isJsonObject(result.progress) ? result.progress : null, state);
        pause = Math.min(Math.ceil(pause * 1.5), maxPause);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
      if (options.cancelOnAbort !== false) await this.cancel(jobId).catch(() => undefined);
      throw new SmcpError("timeout", `stopped waiting for job ${jobId}`, { cause: signal.reason });
    }
  }

  /**
   * Verifies a response body per SPEC §3. Returns the response, or throws
   * {@link SmcpError} (`origin: "local"`, `received` = the body).
   */
  verifyResponse(body: string | Uint8Array, requestId: string): ResponseMessage {
    const received = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
    const reject = (code: "bad_envelope" | "bad_signature" | "wrong_server" | "stale", message: string, details?: unknown) => {
      throw new SmcpError(code, message, { received, origin: "local", details });
    };
    let parsed: ReturnType<typeof parseLossless>;
    try {
      parsed = parseLossless(body, { omitTopLevelKey: "signature" });
    } catch (error) {
      return reject("bad_envelope", `the answer is not a JSON response: ${(error as Error).message}`);
    }
    const shape = ResponseSchema.safeParse(parsed.value);
    if (!shape.success) return reject("bad_envelope", "the answer is not a signed mcp/0.1 response", describeIssues(shape.error));
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

function waitSignal(options: WaitOptions): AbortSignal {
  const signals: AbortSignal[] = [];
  if (options.signal) signals.push(options.signal);
  if (options.timeoutMs !== undefined) signals.push(AbortSignal.timeout(options.timeoutMs));
  return signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);
}
