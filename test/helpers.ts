import { execFile, execFileSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  createClient,
  createServer,
  defineTool,
  demoTools,
  httpTransport,
  inProcessTransport,
  type ServerOptions,
  type SmcpClient,
  type SmcpServer,
  type Transport,
} from "../src/index.js";
import { ED25519_SECRET_PREFIX, type Key, publicKeyOf, toKeys } from "../src/protocol/keys.js";
import { signMessage } from "../src/protocol/sign.js";

export const SERVER_ID = "mcp-server-001";
export const SERVER_SECRET = "server_secret_key_123";
export const CLIENT_ID = "client-001";
export const CLIENT_SECRET = "client_secret_key_456";
export const OTHER_CLIENT_ID = "client-002";
export const OTHER_CLIENT_SECRET = "client_secret_key_789";

// Fixed Ed25519 keys (seeds from labels), so a failure reproduces.
const edSecret = (label: string) => `${ED25519_SECRET_PREFIX}${createHash("sha256").update(label).digest("base64url")}`;
export const ED_SERVER_SECRET = edSecret("smcp test ed25519 server");
export const ED_SERVER_PUBLIC = publicKeyOf(ED_SERVER_SECRET, "test server");
export const ED_CLIENT_ID = "edge-001";
export const ED_CLIENT_SECRET = edSecret("smcp test ed25519 client");
export const ED_CLIENT_PUBLIC = publicKeyOf(ED_CLIENT_SECRET, "test client");

/** An envelope body signed with the test client's key; `overrides` replace or add fields. */
export function signedEnvelope(overrides: Record<string, unknown> = {}, secret = CLIENT_SECRET): string {
  const key = toKeys(secret, "test client")[0] as Key;
  const fields = {
    v: "mcp/0.1",
    request_id: randomUUID(),
    ts_ms: Date.now(),
    client_id: CLIENT_ID,
    server_id: SERVER_ID,
    tool: "batch_sum",
    args: { numbers: [1, 2] },
    nonce: randomUUID(),
    ...overrides,
  };
  return signMessage(fields, key).body;
}

export const PEER = fileURLToPath(new URL("./interop/peer.py", import.meta.url));

/** Runs one op of the Python peer (the seed's code) and returns its JSON answer. */
export function python<T>(op: string, request: unknown): T {
  const out = execFileSync("python3", [PEER, op], { input: JSON.stringify(request), encoding: "utf8", maxBuffer: 64 << 20 });
  return JSON.parse(out) as T;
}

/** Like {@link python}, without blocking the event loop (for a peer that calls back into this process). */
export function pythonAsync<T>(op: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile("python3", [PEER, op], { encoding: "utf8", maxBuffer: 64 << 20, timeout: 60_000 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(JSON.parse(stdout) as T);
    });
    child.stdin?.end(JSON.stringify(request));
  });
}

/** A server with two clients, and a client for the first, wired in process. */
export function pair(options: Partial<ServerOptions> = {}): { server: SmcpServer; client: SmcpClient; other: SmcpClient } {
  const server = createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: SERVER_SECRET,
      clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET },
    },
    tools: demoTools,
    ...options,
  });
  const transport = inProcessTransport(server);
  const client = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport,
  });
  const other = createClient({
    clientId: OTHER_CLIENT_ID,
    clientSecret: OTHER_CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport,
  });
  return { server, client, other };
}

/**
 * One server holding an HMAC secret and an Ed25519 key at once, with an HMAC
 * client (`CLIENT_ID`) and an Ed25519 client (`ED_CLIENT_ID`), and a client of each.
 */
export function mixedPair(options: Partial<ServerOptions> = {}): { server: SmcpServer; hmac: SmcpClient; ed: SmcpClient } {
  const server = createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: [SERVER_SECRET, ED_SERVER_SECRET],
      clients: { [CLIENT_ID]: CLIENT_SECRET, [ED_CLIENT_ID]: ED_CLIENT_PUBLIC },
    },
    tools: demoTools,
    ...options,
  });
  const transport = inProcessTransport(server);
  const hmac = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverKey: SERVER_SECRET,
    transport,
  });
  const ed = createClient({
    clientId: ED_CLIENT_ID,
    clientSecret: ED_CLIENT_SECRET,
    serverId: SERVER_ID,
    serverKey: ED_SERVER_PUBLIC,
    transport,
  });
  return { server, hmac, ed };
}

/** Resolves when `check` returns true, polling on the event loop; rejects after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `smcp serve` flags for the test server with both HMAC clients. */
export const SERVE_KEYS = [
  "--server-id",
  SERVER_ID,
  "--server-secret",
  SERVER_SECRET,
  "--client",
  `${CLIENT_ID}=${CLIENT_SECRET}`,
  "--client",
  `${OTHER_CLIENT_ID}=${OTHER_CLIENT_SECRET}`,
];

/** A sync tool `spy` that echoes `{n}` and counts its runs in `calls.spy`: "nothing executed" checks read it. */
export function spyTool(calls: { spy: number }) {
  return defineTool({
    name: "spy",
    description: "counts calls",
    input: z.strictObject({ n: z.number() }),
    output: z.strictObject({ n: z.number() }),
    handler: ({ n }) => {
      calls.spy++;
      return { n };
    },
  });
}

/**
 * The test client (`CLIENT_ID`) of a server listening at `origin` (the `listening on …` line's URL, or its /mcp),
 * over `transport` (default: `httpTransport` to that origin).
 */
export function clientAt(origin: string, transport: Transport = httpTransport(origin.replace(/^listening on /, ""))): SmcpClient {
  return createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport,
  });
}

/**
 * A job tool `held` that runs until aborted, and the tags (its one argument) of the runs that started and of
 * those that were aborted: for tests of cancels reaching the process running a job.
 */
export function heldJobTool() {
  const started = new Set<string>();
  const aborted = new Set<string>();
  const tool = defineTool({
    kind: "job",
    name: "held",
    description: "runs until aborted",
    input: z.strictObject({ tag: z.string() }),
    output: z.strictObject({}),
    handler: ({ tag }, ctx) =>
      new Promise((_, reject) => {
        started.add(tag);
        ctx.signal.addEventListener("abort", () => {
          aborted.add(tag);
          reject(ctx.signal.reason);
        });
      }),
  });
  return { tool, started, aborted };
}
