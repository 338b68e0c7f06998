/**
 * Sandbox target: an smcp server (in process through `handle()`, and over
 * real HTTP through `serveHttp`) whose side effects are counted: tool
 * executions, nonces stored, jobs created. Its clock is fixed (FIXED_NOW),
 * so a fuzz seed replays to the same answers.
 */
import { z } from "zod";
import {
  createServer,
  defineTool,
  demoTools,
  MemoryJobStore,
  MemoryNonceStore,
  type NewJob,
  type NonceStore,
} from "../../../src/index.js";
import { type RunningServer, type ServeOptions, serveHttp } from "../../../src/server/http-node.js";
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "../../helpers.js";
import { serveSandbox } from "../child.js";
import { FIXED_NOW } from "../json.js";

/** Side effects so far. */
export interface Effects {
  /** Runs of the `spy` tool's handler. */
  executed: number;
  /** Nonce reservations that stored a pair. */
  stored: number;
  /** Jobs created. */
  created: number;
}

/** What `handle` returns: the answer and the side effects it had. */
export interface Handled {
  httpStatus: number;
  body: string;
  effects: Effects;
}

const effects: Effects = { executed: 0, stored: 0, created: 0 };
const now = () => FIXED_NOW;

/** A nonce store that counts what it stores and can start over (each fuzz case starts from an empty cache). */
class CountingNonces implements NonceStore {
  #inner = new MemoryNonceStore({ now });
  async reserve(clientId: string, nonce: string, expiresAt: number): Promise<boolean> {
    const fresh = await this.#inner.reserve(clientId, nonce, expiresAt);
    if (fresh) effects.stored++;
    return fresh;
  }
  reset(): void {
    this.#inner = new MemoryNonceStore({ now });
  }
  async close(): Promise<void> {}
}

class CountingJobs extends MemoryJobStore {
  override async create(job: NewJob) {
    const created = await super.create(job);
    if (created.created) effects.created++;
    return created;
  }
}

/** A sync tool with every kind of argument, counting its runs; its output never echoes its input. */
const spy = defineTool({
  name: "spy",
  description: "counts its runs",
  input: z.strictObject({
    n: z.number(),
    s: z.string().max(64).optional(),
    mode: z.enum(["a", "b"]).optional(),
    tags: z.array(z.string()).max(2).optional(),
  }),
  output: z.strictObject({ runs: z.int() }),
  handler: () => {
    effects.executed++;
    return { runs: effects.executed };
  },
});

// `hold` keeps its request in flight until the parent calls `release`.
const holders: (() => void)[] = [];
const hold = defineTool({
  name: "hold",
  description: "answers when released",
  input: z.strictObject({}),
  output: z.strictObject({}),
  handler: async () => {
    effects.executed++;
    await new Promise<void>((resolve) => holders.push(resolve));
    return {};
  },
});

const nonces = new CountingNonces();
const server = createServer({
  keyring: {
    serverId: SERVER_ID,
    serverSecrets: SERVER_SECRET,
    clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET },
  },
  tools: [...demoTools, spy, hold],
  nonceStore: nonces,
  jobStore: new CountingJobs({ now }),
  // Jobs are created, never run: a created job is the side effect counted.
  runJobs: false,
  now,
});
// One HTTP server per distinct set of options.
const servers = new Map<string, RunningServer>();

serveSandbox({
  /** Empties the replay cache (each case starts from a clean one). */
  reset: () => {
    nonces.reset();
    return null;
  },
  handle: async (input: string | Uint8Array): Promise<Handled> => {
    const result = await server.handle(input);
    return { httpStatus: result.httpStatus, body: result.body, effects: { ...effects } };
  },
  effects: () => ({ ...effects }),
  /** Starts an HTTP server with these options (once per distinct options) and returns its endpoint URL. */
  serve: async (options: ServeOptions) => {
    const key = JSON.stringify(options);
    let running = servers.get(key);
    if (!running) {
      running = await serveHttp(server, { port: 0, bodyTimeoutMs: 2_000, ...options });
      servers.set(key, running);
    }
    return running.url;
  },
  /** How many `hold` calls are waiting. */
  held: () => holders.length,
  /** Lets every waiting `hold` call answer. */
  release: () => {
    for (const resolve of holders.splice(0)) resolve();
    return null;
  },
});
