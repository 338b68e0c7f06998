// Peer 3: the protocol's floor. A node:http server doing only what mcp/0.1 can't skip for
// batch_sum, written the plain way (issue 22): read the body, JSON.parse, canonical bytes by
// sorting keys, HMAC-SHA256 verify with timingSafeEqual, the ts_ms window, a nonce set with expiry,
// a typed check of `numbers`, an answer with sorted keys signed by HMAC-SHA256. No logging,
// limits, metrics, lossless numbers or schema library. Prints its URL.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BENCH } from "../fixtures.js";

const SERVER_ID = "bench";
const CLIENTS = new Map([["bench", Buffer.from(BENCH.clientSecret)]]);
const SERVER_KEY = Buffer.from(BENCH.serverSecret);
const WINDOW_MS = 300_000;
const nonces = new Map<string, number>();
setInterval(() => {
  const now = Date.now();
  for (const [key, until] of nonces) if (until < now) nonces.delete(key);
}, 10_000).unref();

/** Canonical JSON the plain way: keys sorted at every level, JSON.stringify for the rest. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function answer(
  requestId: string,
  status: number,
  fields: { ok: boolean; result: unknown; error: string | null; status: string },
) {
  const message = { request_id: requestId, ts_ms: Date.now(), server_id: SERVER_ID, ...fields };
  const text = canonical(message);
  const signature = createHmac("sha256", SERVER_KEY).update(text).digest("hex");
  return { status, body: `${text.slice(0, -1)},"signature":"${signature}"}` };
}

function handle(raw: string): { status: number; body: string } {
  const env = JSON.parse(raw) as Record<string, unknown>;
  const requestId = typeof env.request_id === "string" ? env.request_id : "";
  const fail = (status: number, code: string) =>
    answer(requestId, status, { ok: false, status: "error", result: { code }, error: `${code}: refused` });
  const key = CLIENTS.get(env.client_id as string);
  if (!key) return fail(401, "unknown_client");
  const { signature, ...signed } = env;
  const expected = createHmac("sha256", key).update(canonical(signed)).digest();
  const given = Buffer.from(String(signature), "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail(401, "bad_signature");
  if (env.server_id !== SERVER_ID) return fail(401, "wrong_server");
  const ts = env.ts_ms as number;
  if (!(Math.abs(Date.now() - ts) <= WINDOW_MS)) return fail(401, "stale");
  const nonce = `${env.client_id}\u0000${env.nonce}`;
  if (nonces.has(nonce)) return fail(401, "replay");
  nonces.set(nonce, ts + WINDOW_MS);
  const numbers = (env.args as { numbers?: unknown } | undefined)?.numbers;
  if (env.tool !== "batch_sum" || !Array.isArray(numbers) || numbers.length === 0 || !numbers.every(Number.isFinite)) {
    return fail(400, "bad_args");
  }
  let total = 0;
  for (const n of numbers as number[]) total += n;
  return answer(requestId, 200, { ok: true, status: "ok", result: { count: numbers.length, total }, error: null });
}

// `batched` (the second argument): the floor with smcp's one change to how answers are written, all of an
// event-loop turn's answers back to back (setImmediate), to show what that alone buys the plain floor.
const BATCHED = process.argv[3] === "batched";
let queued: (() => void)[] = [];
const flush = () => {
  const batch = queued;
  queued = [];
  for (const write of batch) write();
};

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let out: { status: number; body: string };
    try {
      out = handle(Buffer.concat(chunks).toString("utf8"));
    } catch {
      out = { status: 400, body: '{"error":"bad_envelope"}' };
    }
    const write = () => {
      res.writeHead(out.status, { "content-type": "application/json", "content-length": Buffer.byteLength(out.body) });
      res.end(out.body);
    };
    if (!BATCHED) return write();
    if (queued.length === 0) setImmediate(flush);
    queued.push(write);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
