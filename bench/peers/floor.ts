// Peer 3: the protocol's floor. A node:http server doing only what mcp/0.1 can't skip for
// batch_sum, written the plain way (issue 22): read the body, JSON.parse, canonical bytes by
// sorting keys, HMAC-SHA256 verify with timingSafeEqual, the ts_ms window, a nonce set with expiry,
// a typed check of `numbers`, an answer with sorted keys signed by HMAC-SHA256. No logging,
// limits, metrics, lossless numbers or schema library. Prints its URL.
// FLOOR_NONCES puts the nonce set in a store, done as plainly: `redis://HOST:PORT/DB?prefix=P`, one
// `SET key 1 PX ttl NX` per request (ioredis); `sqlite:PATH`, one autocommitted `INSERT OR IGNORE` per
// request (better-sqlite3, WAL, synchronous NORMAL; the key's 32-byte SHA-256 as primary key, where smcp
// keeps 16 bytes, and an expiry index as smcp's). Unset, a Map. It shows what a store costs the floor
// itself, beside what it costs smcp. (A nonce reused after it expired is refused until the sweep takes
// its row; smcp's store takes the row over at once. The bench never reuses one.)
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BENCH } from "../fixtures.js";

const SERVER_ID = "bench";
const CLIENTS = new Map([["bench", Buffer.from(BENCH.clientSecret)]]);
const SERVER_KEY = Buffer.from(BENCH.serverSecret);
const WINDOW_MS = 300_000;

/** Reserves a nonce until `until`: false when it is held already. */
type Reserve = (key: string, until: number) => boolean | Promise<boolean>;

async function nonceSet(where: string | undefined): Promise<Reserve> {
  if (where?.startsWith("redis://")) {
    const { Redis } = await import("ioredis");
    const url = new URL(where);
    const prefix = url.searchParams.get("prefix") ?? "floor:";
    url.search = "";
    const redis = new Redis(url.href);
    return async (key, until) => (await redis.set(`${prefix}${key}`, "1", "PX", Math.max(1, until - Date.now()), "NX")) === "OK";
  }
  if (where?.startsWith("sqlite:")) {
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(where.slice("sqlite:".length));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(`CREATE TABLE IF NOT EXISTS nonces (digest BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);`);
    const insert = db.prepare("INSERT OR IGNORE INTO nonces (digest, expires_at) VALUES (?, ?)");
    // Bounded, so one sweep never holds the event loop long.
    const sweep = db.prepare("DELETE FROM nonces WHERE digest IN (SELECT digest FROM nonces WHERE expires_at <= ? LIMIT 2000)");
    setInterval(() => sweep.run(Date.now()), 1000).unref();
    // The key hashed to a fixed-size digest, as any store keyed by client-chosen text would.
    return (key, until) => {
      try {
        return insert.run(createHash("sha256").update(key).digest(), until).changes === 1;
      } catch (error) {
        // The store failed (busy, full): answered as Redis's failures are, 503.
        return Promise.reject(error);
      }
    };
  }
  const nonces = new Map<string, number>();
  setInterval(() => {
    const now = Date.now();
    for (const [key, until] of nonces) if (until < now) nonces.delete(key);
  }, 10_000).unref();
  return (key, until) => {
    if (nonces.has(key)) return false;
    nonces.set(key, until);
    return true;
  };
}
const reserve = await nonceSet(process.env.FLOOR_NONCES);

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

type Answer = { status: number; body: string };

function handle(raw: string): Answer | Promise<Answer> {
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
  const ts = env.ts_ms;
  if (typeof ts !== "number" || !(Math.abs(Date.now() - ts) <= WINDOW_MS)) return fail(401, "stale");
  const numbers = (env.args as { numbers?: unknown } | undefined)?.numbers;
  if (env.tool !== "batch_sum" || !Array.isArray(numbers) || numbers.length === 0 || !numbers.every(Number.isFinite)) {
    return fail(400, "bad_args");
  }
  let total = 0;
  for (const n of numbers as number[]) total += n;
  const ok = () => answer(requestId, 200, { ok: true, status: "ok", result: { count: numbers.length, total }, error: null });
  // The nonce is reserved after the arguments are checked (a bad request is refused without touching the
  // store). A valid replay is refused either way; a replayed bad request now gets bad_args, not replay.
  const fresh = reserve(`${env.client_id}\u0000${env.nonce}`, ts + WINDOW_MS);
  if (fresh === true) return ok();
  if (fresh === false) return fail(401, "replay");
  return fresh.then((isFresh) => (isFresh ? ok() : fail(401, "replay")));
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
    let out: Answer | Promise<Answer>;
    try {
      out = handle(Buffer.concat(chunks).toString("utf8"));
    } catch {
      out = { status: 400, body: '{"error":"bad_envelope"}' };
    }
    if ("then" in out) {
      out.then(send, () => send({ status: 503, body: '{"error":"unavailable"}' }));
    } else send(out);
  });
  const send = (out: Answer) => {
    const write = () => {
      res.writeHead(out.status, { "content-type": "application/json", "content-length": Buffer.byteLength(out.body) });
      res.end(out.body);
    };
    if (!BATCHED) return write();
    if (queued.length === 0) setImmediate(flush);
    queued.push(write);
  };
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
