import { randomUUID } from "node:crypto";
import { z } from "zod";
import {
  createClient,
  defineTool,
  inProcessTransport,
  type JobStore,
  type SmcpClient,
  type SmcpServer,
  type Transport,
} from "../src/index.js";
import { toKeys } from "../src/protocol/keys.js";
import { parseLossless } from "../src/protocol/parse.js";
import { signCanonical } from "../src/protocol/sign.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

/** A job store whose method calls are counted by name (the store itself is unchanged). */
export function countingStore(store: JobStore): { store: JobStore; calls: Map<string, number>; total(): number } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        calls.set(property, (calls.get(property) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls, total: () => [...calls.values()].reduce((a, b) => a + b, 0) };
}

/** What a counting transport saw of one request: its tool and args. */
export interface SentRequest {
  tool: string;
  args: Record<string, unknown>;
  /** When it was sent (performance.now()). */
  at?: number;
}

/** Wraps a transport and records every request sent through it. */
export function countingTransport(inner: Transport): { transport: Transport; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  return {
    sent,
    transport: {
      send(body, options) {
        const message = JSON.parse(body) as SentRequest;
        sent.push({ tool: message.tool, args: message.args, at: performance.now() });
        return inner.send(body, options);
      },
    },
  };
}

/** A client of the test keys whose requests are recorded. */
export function countedClient(
  server: Pick<SmcpServer, "handle">,
  transport?: Transport,
): { client: SmcpClient; sent: SentRequest[] } {
  const counted = countingTransport(transport ?? inProcessTransport(server));
  const client = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport: counted.transport,
  });
  return { client, sent: counted.sent };
}

/** A `poll_job` envelope whose args are raw JSON text: see {@link rawEnvelope}. */
export function rawPollEnvelope(argsText: string): string {
  return rawEnvelope("poll_job", argsText);
}

/**
 * An envelope whose args are given as raw JSON text (float and huge
 * lexemes the canonicalizer would not write), signed over its own canonical form.
 */
export function rawEnvelope(tool: string, argsText: string): string {
  const body = `{"v":"mcp/0.1","request_id":"${randomUUID()}","ts_ms":${Date.now()},"client_id":"${CLIENT_ID}","server_id":"${SERVER_ID}","tool":"${tool}","args":${argsText},"nonce":"${randomUUID()}"}`;
  const { canonical } = parseLossless(body);
  const key = toKeys(CLIENT_SECRET, "test client")[0];
  if (!key) throw new Error("no test key");
  return `${body.slice(0, -1)},"signature":"${signCanonical(key, canonical)}"}`;
}

/** Gates jobs wait on: the test opens them, so nothing waits on time. */
export class Gates {
  readonly #open = new Map<string, () => void>();
  readonly #waiting = new Map<string, Promise<void>>();
  readonly started = new Set<string>();
  readonly aborted = new Set<string>();

  wait(name: string): Promise<void> {
    let promise = this.#waiting.get(name);
    if (!promise) {
      promise = new Promise<void>((resolve) => this.#open.set(name, resolve));
      this.#waiting.set(name, promise);
    }
    return promise;
  }

  open(name: string): void {
    void this.wait(name);
    this.#open.get(name)?.();
  }
}

/** Rejects when the signal aborts: a handler that honours its signal. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/**
 * Job tools for long-poll tests: `stepper` reports progress once its
 * `NAME:progress` gate opens and ends once `NAME:end` opens; `quiet` ends
 * at its gate without any progress; `instant` ends at once.
 */
export function longPollTools(gates: Gates) {
  const stepper = defineTool({
    kind: "job",
    name: "stepper",
    description: "progress at one gate, the end at another",
    input: z.strictObject({ name: z.string() }),
    output: z.strictObject({ name: z.string() }),
    handler: async ({ name }, ctx) => {
      gates.started.add(name);
      await Promise.race([gates.wait(`${name}:progress`), aborted(ctx.signal)]);
      await ctx.progress({ step: 1 });
      await Promise.race([gates.wait(`${name}:end`), aborted(ctx.signal)]);
      return { name };
    },
  });
  const quiet = defineTool({
    kind: "job",
    name: "quiet",
    description: "ends at its gate, never reports progress",
    input: z.strictObject({ name: z.string() }),
    output: z.strictObject({ name: z.string() }),
    handler: async ({ name }, ctx) => {
      gates.started.add(name);
      await Promise.race([gates.wait(name), aborted(ctx.signal)]);
      return { name };
    },
  });
  const instant = defineTool({
    kind: "job",
    name: "instant",
    description: "ends at once",
    input: z.strictObject({}),
    output: z.strictObject({ at: z.number() }),
    handler: async () => ({ at: Date.now() }),
  });
  return [stepper, quiet, instant];
}
