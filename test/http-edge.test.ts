/**
 * The HTTP edge under attack (issue #8), against `serveHttp` running in a
 * worker (test/fuzz/targets/server.ts: a hang is a failure, side effects
 * are counted). Each case names the exact answer, and checks that nothing
 * ran and nothing was stored that SPEC §3 does not allow.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { signMessage } from "../src/protocol/sign.js";
import { clientKey, FIXED_NOW } from "./fuzz/json.js";
import { parseResponses, postHead, RawConnection, type RawResponse } from "./fuzz/raw-http.js";
import { Sandbox } from "./fuzz/sandbox.js";
import type { Effects } from "./fuzz/targets/server.js";
import { type Checked, checkAnswer, MAX_ERROR_BYTES } from "./fuzz/wire.js";
import { CLIENT_ID, SERVER_ID } from "./helpers.js";

const sandbox = new Sandbox(new URL("./fuzz/targets/server.ts", import.meta.url));
after(() => sandbox.close());

const CALL_MS = 15_000;
// Hang detection only: performance is measured in bench/, not here.
const ANSWER_MS = 10_000;

/** Starts (or reuses) a server with these options; resolves to its origin. */
async function serve(options: Record<string, unknown> = {}): Promise<string> {
  return new URL(await sandbox.call<string>("serve", options, CALL_MS)).origin;
}

const effects = () => sandbox.call<Effects>("effects", null, CALL_MS);

/** A signed envelope body (canonical text), for the server's fixed clock. */
function signed(tool: string, args: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const fields = {
    v: "mcp/0.1",
    request_id: randomUUID(),
    ts_ms: FIXED_NOW,
    client_id: CLIENT_ID,
    server_id: SERVER_ID,
    tool,
    args,
    nonce: randomUUID(),
    ...extra,
  };
  return signMessage(fields, clientKey).body;
}

async function post(
  origin: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ checked: Checked; bytes: number }> {
  const response = await fetch(`${origin}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal: AbortSignal.timeout(ANSWER_MS),
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { checked: checkAnswer({ body: bytes, httpStatus: response.status }, { markers: [] }), bytes: bytes.length };
}

function checkRaw(response: RawResponse, markers: string[] = []): Checked {
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return checkAnswer({ body: response.body, httpStatus: response.status }, { markers });
}

/** The side effects between two readings. */
function delta(before: Effects, after: Effects): Effects {
  return {
    executed: after.executed - before.executed,
    stored: after.stored - before.stored,
    created: after.created - before.created,
  };
}
const NOTHING: Effects = { executed: 0, stored: 0, created: 0 };

describe("HTTP edge under attack (issue #8)", () => {
  let origin = "";
  before(async () => {
    origin = await serve({ bodyTimeoutMs: 300, headersTimeoutMs: 300, requestTimeoutMs: 5_000 });
  });

  it("the 33-byte hang reproducer gets a signed 400 bad_envelope, and the next requests are answered", async () => {
    // The body of the issue's curl command, as it sends it.
    const body = '{"v":"mcp/0.1","request_id":"abc';
    const start = await effects();
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write(postHead("/mcp", { "content-length": body.length }) + body);
      const first = await connection.response(0, ANSWER_MS);
      const checked = checkRaw(first);
      assert.equal(first.status, 400);
      assert.equal(checked.code, "bad_envelope");
      assert.equal(checked.requestId, "");
      // The same connection, then a new one, are answered.
      await connection.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
      assert.equal((await connection.response(1, ANSWER_MS)).status, 200);
    } finally {
      connection.close();
    }
    const next = await post(origin, signed("batch_sum", { numbers: [1, 2] }));
    assert.equal(next.checked.code, "ok");
    assert.deepEqual(
      delta(start, await effects()),
      { executed: 0, stored: 1, created: 0 },
      "only the good request stored its nonce",
    );
  });

  it("every body cut inside a string is a signed 400 bad_envelope; nothing runs, nothing is stored", async () => {
    const body = signed("spy", { n: 1, s: 'a "quoted" \\ é😀 string' });
    const start = await effects();
    let inString = false;
    let cuts = 0;
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (inString && c === "\\") {
        // A cut right after the backslash, inside the escape.
        const { checked } = await post(origin, body.slice(0, i + 1));
        assert.equal(checked.code, "bad_envelope");
        cuts++;
        i++;
        continue;
      }
      if (c === '"') inString = !inString;
      if (inString) {
        const { checked } = await post(origin, body.slice(0, i + 1));
        assert.equal(checked.code, "bad_envelope", `cut after ${i + 1} bytes`);
        cuts++;
      }
    }
    assert.ok(cuts > 150, `${cuts} cuts`);
    assert.deepEqual(delta(start, await effects()), NOTHING);
  });

  it("a Content-Length shorter than the body: the signed answer to what was declared, then the connection closes", async () => {
    const body = signed("spy", { n: 1 });
    const start = await effects();
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write(postHead("/mcp", { "content-length": body.length - 10 }) + body);
      const checked = checkRaw(await connection.response(0, ANSWER_MS));
      assert.equal(checked.code, "bad_envelope");
      await connection.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "close");
    } finally {
      connection.close();
    }
    assert.deepEqual(delta(start, await effects()), NOTHING);
    assert.equal((await post(origin, signed("batch_sum", { numbers: [1] }))).checked.code, "ok");
  });

  it("Expect: 100-continue with a declared length over the cap is a signed 413 without 100 Continue", async () => {
    const start = await effects();
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write(postHead("/mcp", { "content-length": 2 * 1024 * 1024, expect: "100-continue" }));
      const answer = await connection.response(0, ANSWER_MS);
      assert.equal(answer.status, 413);
      assert.equal(checkRaw(answer).code, "too_large");
      assert.deepEqual(parseResponses(connection.received).interim, [], "no 100 Continue was sent");
    } finally {
      connection.close();
    }
    // Under the cap the server does say 100 Continue, then answers the body.
    const body = signed("batch_sum", { numbers: [1, 2] });
    const accepted = new RawConnection(origin);
    try {
      await accepted.opened;
      await accepted.write(postHead("/mcp", { "content-length": body.length, expect: "100-continue" }));
      await accepted.until((data) => (parseResponses(data).interim.includes(100) ? true : undefined), ANSWER_MS, "100 Continue");
      await accepted.write(body);
      assert.equal(checkRaw(await accepted.response(0, ANSWER_MS)).code, "ok");
    } finally {
      accepted.close();
    }
    assert.deepEqual(delta(start, await effects()), { executed: 0, stored: 1, created: 0 });
  });

  it("an absolute-form target (POST http://host/mcp) reaches the endpoint (RFC 9112 §3.2.2)", async () => {
    const body = signed("spy", { n: 2 });
    const start = await effects();
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write(`${postHead(`${origin}/mcp`, { "content-length": body.length })}${body}`);
      assert.equal(checkRaw(await connection.response(0, ANSWER_MS)).code, "ok");
      await connection.write(`GET ${origin}/healthz?x=1 HTTP/1.1\r\nhost: x\r\n\r\n`);
      assert.equal((await connection.response(1, ANSWER_MS)).status, 200);
      await connection.write(`${postHead("http://elsewhere.example/other", { "content-length": 2 })}{}`);
      assert.equal((await connection.response(2, ANSWER_MS)).status, 404);
    } finally {
      connection.close();
    }
    assert.deepEqual(delta(start, await effects()), { executed: 1, stored: 1, created: 0 });
  });

  // Regression found here: node checks headersTimeout/requestTimeout only every
  // connectionsCheckingInterval (30 s by default), so a 300 ms head deadline took 30 s;
  // serveHttp now checks at least every second.
  it("a slow head gets 408 and a closed connection once headersTimeoutMs has passed", async () => {
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write("POST /mcp HTTP/1.1\r\nhost: x\r\n");
      await connection.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "close of a slow head");
      assert.match(connection.received.toString("latin1"), /^HTTP\/1\.1 408 /);
    } finally {
      connection.close();
    }
  });

  it("a slow body gets a signed 400 bad_envelope once bodyTimeoutMs has passed; nothing runs, nothing is stored", async () => {
    const start = await effects();
    const body = signed("spy", { n: 3 });
    const connection = new RawConnection(origin);
    try {
      await connection.opened;
      await connection.write(postHead("/mcp", { "content-length": body.length }) + body.slice(0, 20));
      const answer = await connection.response(0, ANSWER_MS);
      assert.equal(answer.status, 400);
      assert.equal(checkRaw(answer).code, "bad_envelope");
    } finally {
      connection.close();
    }
    assert.deepEqual(delta(start, await effects()), NOTHING);
  });

  it("37x amplification: a signed batch_sum of ~340k empty strings (<= 1 MiB) gets a bounded bad_args", async () => {
    const body = signed("batch_sum", { numbers: new Array(340_000).fill("") });
    assert.ok(Buffer.byteLength(body) <= 1024 * 1024, `${Buffer.byteLength(body)} bytes`);
    const start = await effects();
    const { checked, bytes } = await post(origin, body);
    assert.equal(checked.code, "bad_args");
    assert.ok(bytes <= MAX_ERROR_BYTES, `${bytes} bytes`);
    // Arguments are checked after the nonce step (SPEC §3): the nonce is kept, nothing else.
    assert.deepEqual(delta(start, await effects()), { executed: 0, stored: 1, created: 0 });
  });

  it("unknown top-level keys with terminal escape sequences are refused without being reflected", async () => {
    const marker = "MRKESCAPES";
    const body = signed("spy", { n: 1 }, { [`\u001b]0;${marker}\u0007`]: `\u001b[31m${marker}\u001b[0m`, [marker]: 1 });
    const start = await effects();
    const response = await fetch(`${origin}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(ANSWER_MS),
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const checked = checkAnswer({ body: bytes, httpStatus: response.status }, { markers: [marker] });
    assert.equal(checked.code, "bad_envelope");
    assert.equal(response.status, 400);
    const text = Buffer.from(bytes).toString("latin1");
    assert.ok(!text.includes("\u001b") && !text.toLowerCase().includes("\\u001b"), "an escape sequence in the answer");
    assert.deepEqual(delta(start, await effects()), NOTHING);
  });
});

describe("HTTP edge capacity (issue #8)", () => {
  it("past maxInFlight a request gets a signed 503 unavailable at once; nothing runs for it", async () => {
    const origin = await serve({ maxInFlight: 2 });
    const held = [post(origin, signed("hold", {})), post(origin, signed("hold", {}))];
    // Both slots taken: wait until both calls are inside the tool.
    const deadline = Date.now() + ANSWER_MS;
    while ((await sandbox.call<number>("held", null, CALL_MS)) < 2) {
      assert.ok(Date.now() < deadline, "the held calls never arrived");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const start = await effects();
    const response = await fetch(`${origin}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: signed("spy", { n: 1 }),
      signal: AbortSignal.timeout(ANSWER_MS),
    });
    const checked = checkAnswer(
      { body: new Uint8Array(await response.arrayBuffer()), httpStatus: response.status },
      { markers: [] },
    );
    assert.equal(checked.code, "unavailable");
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    assert.deepEqual(delta(start, await effects()), NOTHING);
    await sandbox.call("release", null, CALL_MS);
    for (const answer of await Promise.all(held)) assert.equal(answer.checked.code, "ok");
    // Slots are free again.
    assert.equal((await post(origin, signed("spy", { n: 1 }))).checked.code, "ok");
  });

  it("maxConnections refuses sockets past the cap; a freed slot is usable again", async () => {
    const origin = await serve({ maxConnections: 2 });
    const open = [new RawConnection(origin), new RawConnection(origin)];
    try {
      await Promise.all(open.map((c) => c.opened));
      // Both accepted sockets answer (so the server counts them before the third arrives).
      for (const [i, c] of open.entries()) {
        await c.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
        assert.equal((await c.response(0, ANSWER_MS)).status, 200, `connection ${i}`);
      }
      const extra = new RawConnection(origin);
      await extra.opened.catch(() => undefined);
      await extra.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
      await extra.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "the third socket closed");
      assert.equal(extra.received.length, 0, "the third socket got an answer");
      // Free one slot; a new connection is served once the server has seen the close.
      open[0]?.close();
      const deadline = Date.now() + ANSWER_MS;
      for (;;) {
        const again = new RawConnection(origin);
        await again.opened.catch(() => undefined);
        await again.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
        const ok = await again
          .response(0, 2_000)
          .then((r) => r.status === 200)
          .catch(() => false);
        again.close();
        if (ok) break;
        assert.ok(Date.now() < deadline, "a freed connection slot was never reused");
      }
    } finally {
      for (const c of open) c.close();
    }
  });
});
