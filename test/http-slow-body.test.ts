/**
 * Unauthenticated load can't exhaust authenticated capacity: bodies that are
 * still arriving (slowloris-style: complete head, part of the body) hold at
 * most half of `maxInFlight`, at most `maxPendingPerAddress` per source, and
 * are cut off below `minBodyRate`; a request that arrives whole is served
 * meanwhile. Real `serveHttp` servers on loopback; 127.0.0.2, 127.0.0.3 …
 * are distinct source addresses (Linux routes all of 127/8 to loopback).
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { runCli } from "../src/cli/run.js";
import { resolveServeSettings, SERVE_HELP } from "../src/cli/serve.js";
import {
  DEFAULT_BODY_GRACE_MS,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_PENDING_PER_ADDRESS,
  DEFAULT_MIN_BODY_RATE,
  type RunningServer,
  type ServeOptions,
  serveHttp,
} from "../src/http.js";
import { createFetchHandler, createServer, demoTools } from "../src/index.js";
import { clientAddress, httpSettings } from "../src/server/http-common.js";
import { captureIO } from "./cli-helpers.js";
import { postHead, RawConnection, type RawResponse } from "./fuzz/raw-http.js";
import { runProperty } from "./fuzz/run.js";
import { type Checked, checkAnswer } from "./fuzz/wire.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, signedEnvelope, until } from "./helpers.js";

const ANSWER_MS = 10_000;
const ATTACKER = "127.0.0.2";
const OTHER_ATTACKER = "127.0.0.3";

const servers: RunningServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(options: ServeOptions): Promise<RunningServer> {
  const server = createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
    tools: demoTools,
  });
  const running = await serveHttp(server, { port: 0, shutdownGraceMs: 1_000, ...options });
  servers.push(running);
  return running;
}

/** A connection from `localAddress` that sends a complete head declaring `length` bytes, then only `part` of them. */
async function partial(
  running: RunningServer,
  { localAddress = ATTACKER, length = 1000, part = "{", headers = {} as Record<string, string> } = {},
): Promise<RawConnection> {
  const conn = new RawConnection(running.origin, { localAddress });
  await conn.opened;
  await conn.write(postHead("/mcp", { "content-length": length, ...headers }) + part);
  return conn;
}

/**
 * Resolves once the server has read every request sent before: a health
 * check on a new connection is answered only after the reads that were
 * already waiting (loopback delivers in order of writing; node reads every
 * ready socket in one pass) and after the pass that classifies them.
 */
async function serverCaughtUp(running: RunningServer): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const response = await fetch(`${running.origin}/healthz`, { signal: AbortSignal.timeout(ANSWER_MS) });
    await response.arrayBuffer();
  }
}

/** A valid signed request from the test client (127.0.0.1), whole in one write; its checked answer. */
async function victim(running: RunningServer): Promise<Checked> {
  const response = await fetch(running.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: signedEnvelope(),
    signal: AbortSignal.timeout(ANSWER_MS),
  });
  return checkAnswer({ body: new Uint8Array(await response.arrayBuffer()), httpStatus: response.status }, { markers: [] });
}

const checked = (response: RawResponse) => checkAnswer({ body: response.body, httpStatus: response.status }, { markers: [] });

/** Closes every connection and waits until the server holds nothing: no slot leaks. */
async function drained(running: RunningServer, conns: RawConnection[]): Promise<void> {
  for (const conn of conns) conn.close();
  await until(() => running.load().inFlight === 0 && running.load().pendingBodies === 0, ANSWER_MS, "in-flight back to 0");
}

describe("unfinished bodies cannot exhaust capacity", () => {
  it("one source holding more unfinished bodies than max-in-flight leaves a whole request served", async () => {
    // The per-address cap is set out of the way: this is the pending share of max-in-flight alone.
    const running = await serve({ maxInFlight: 64, maxPendingPerAddress: 10_000, minBodyRate: 0 });
    const conns: RawConnection[] = [];
    for (let i = 0; i < 80; i++) conns.push(await partial(running));
    await serverCaughtUp(running);
    const answer = await victim(running);
    assert.equal(answer.code, "ok", "the whole request is served while 80 bodies hang");
    // Half of max-in-flight is held; every other unfinished body was refused at once, signed.
    assert.equal(running.load().pendingBodies, 32);
    await until(() => conns.filter((c) => parseResponsesOf(c) !== undefined).length >= 48, ANSWER_MS, "the refusals");
    let refused = 0;
    for (const conn of conns) {
      const response = parseResponsesOf(conn);
      if (response === undefined) continue;
      refused++;
      assert.equal(checked(response).code, "unavailable");
      assert.equal(response.headers.get("retry-after"), "1");
      await conn.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "connection closed after refusal");
    }
    assert.equal(refused, 48);
    await drained(running, conns);
  });

  it("the (cap+1)th unfinished body from one address gets a signed 429 rate_limited; other addresses still have room", async () => {
    const running = await serve({ maxInFlight: 64, maxPendingPerAddress: 4, minBodyRate: 0 });
    const held: RawConnection[] = [];
    for (let i = 0; i < 4; i++) held.push(await partial(running));
    await serverCaughtUp(running);
    assert.equal(running.load().pendingBodies, 4);
    const over = await partial(running);
    const response = await over.response(0, ANSWER_MS);
    const answer = checked(response);
    assert.equal(response.status, 429);
    assert.equal(answer.code, "rate_limited");
    assert.deepEqual(answer.result?.details, { reason: "pending_bodies", retry_after_ms: 1000 });
    assert.equal(response.headers.get("retry-after"), "1");
    await over.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "connection closed after 429");
    // Another source is counted on its own.
    const other = await partial(running, { localAddress: OTHER_ATTACKER });
    await serverCaughtUp(running);
    assert.equal(running.load().pendingBodies, 5);
    assert.equal(other.received.length, 0);
    // A held body that completes is answered normally (and frees its pending slot).
    const body = signedEnvelope();
    const split = await partial(running, {
      localAddress: OTHER_ATTACKER,
      length: Buffer.byteLength(body),
      part: body.slice(0, 20),
    });
    await serverCaughtUp(running);
    assert.equal(running.load().pendingBodies, 6);
    await split.write(body.slice(20));
    assert.equal(checked(await split.response(0, ANSWER_MS)).code, "ok");
    await until(() => running.load().pendingBodies === 5, ANSWER_MS, "the completed body leaves the pending count");
    await drained(running, [...held, over, other, split]);
  });

  it("a body below the minimum rate is cut off well before the body timeout, signed, and the connection closed", async () => {
    const bodyTimeoutMs = 8_000;
    const running = await serve({ bodyTimeoutMs, minBodyRate: 1000, bodyGraceMs: 200 });
    // Declared 1000 bytes at >= 1000 B/s: due 1.2 s after the head; it never comes.
    const stalled = await partial(running, { length: 1000, part: '{"v":' });
    const started = Date.now();
    const response = await stalled.response(0, ANSWER_MS);
    const elapsed = Date.now() - started;
    assert.equal(response.status, 400);
    assert.equal(checked(response).code, "bad_envelope");
    assert.ok(elapsed < bodyTimeoutMs / 2, `cut off after ${elapsed} ms, not before the ${bodyTimeoutMs} ms timeout`);
    await stalled.until((_data, closed) => (closed ? true : undefined), ANSWER_MS, "connection closed after the cut");

    // A chunked body (no length declared) that trickles one byte per 100 ms (10 B/s) is cut too.
    const trickle = new RawConnection(running.origin, { localAddress: ATTACKER });
    await trickle.opened;
    await trickle.write(postHead("/mcp", { "transfer-encoding": "chunked" }));
    const trickleStarted = Date.now();
    const drip = setInterval(() => void trickle.write("1\r\n \r\n"), 100);
    try {
      const cut = await trickle.response(0, ANSWER_MS);
      assert.equal(checked(cut).code, "bad_envelope");
      assert.ok(Date.now() - trickleStarted < bodyTimeoutMs / 2, "the trickle was cut before the body timeout");
    } finally {
      clearInterval(drip);
    }
    await drained(running, [stalled, trickle]);
  });

  it("the fetch handler cuts a body below the minimum rate off before the body timeout too", async () => {
    const server = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
      tools: demoTools,
    });
    const bodyTimeoutMs = 8_000;
    const handler = createFetchHandler(server, { bodyTimeoutMs, minBodyRate: 1000, bodyGraceMs: 100 });
    // Declares 1000 bytes, sends 5 and stalls: due 1.1 s after the head.
    const stalled = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode('{"v":')) });
    const request = new Request("http://localhost/mcp", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": "1000" },
      body: stalled,
      duplex: "half",
    } as RequestInit);
    const started = Date.now();
    const response = await handler(request);
    const elapsed = Date.now() - started;
    assert.equal(checkAnswer({ body: await response.text(), httpStatus: response.status }, { markers: [] }).code, "bad_envelope");
    assert.ok(elapsed < bodyTimeoutMs / 2, `cut off after ${elapsed} ms`);
    await server.close();
  });

  it("a forged X-Forwarded-For changes nothing unless the peer is a trusted proxy", async () => {
    const untrusting = await serve({ maxPendingPerAddress: 2, minBodyRate: 0 });
    const forged: RawConnection[] = [];
    for (const xff of ["10.0.0.1", "10.0.0.2"]) {
      forged.push(await partial(untrusting, { headers: { "x-forwarded-for": xff } }));
    }
    await serverCaughtUp(untrusting);
    const third = await partial(untrusting, { headers: { "x-forwarded-for": "10.0.0.3" } });
    assert.equal(checked(await third.response(0, ANSWER_MS)).code, "rate_limited");
    await drained(untrusting, [...forged, third]);

    // Behind a trusted proxy (127.0.0.2), each client is counted under the entry that proxy added.
    const proxied = await serve({ maxPendingPerAddress: 2, minBodyRate: 0, trustProxy: [ATTACKER] });
    const conns: RawConnection[] = [];
    for (const xff of ["10.0.0.1", "10.0.0.2", "10.0.0.3", "6.6.6.6, 10.0.0.4"]) {
      conns.push(await partial(proxied, { headers: { "x-forwarded-for": xff } }));
    }
    await serverCaughtUp(proxied);
    assert.equal(proxied.load().pendingBodies, 4);
    // Two more from 10.0.0.4 (whatever its client wrote to the left) reach its cap; the next is refused.
    conns.push(await partial(proxied, { headers: { "x-forwarded-for": "10.0.0.4" } }));
    const over = await partial(proxied, { headers: { "x-forwarded-for": "1.2.3.4,10.0.0.4" } });
    assert.equal(checked(await over.response(0, ANSWER_MS)).code, "rate_limited");
    // A connection not from the proxy cannot claim a forwarded address.
    const direct = await partial(proxied, { localAddress: OTHER_ATTACKER, headers: { "x-forwarded-for": "10.0.0.9" } });
    await serverCaughtUp(proxied);
    assert.equal(proxied.load().pendingBodies, 6);
    await drained(proxied, [...conns, over, direct]);
  });

  it("the address a request is counted under", () => {
    const plain = httpSettings({}, "/mcp");
    const proxy = httpSettings({ trustProxy: ["10.1.1.1", "::1"] }, "/mcp");
    assert.equal(clientAddress(plain, "::ffff:127.0.0.2", "9.9.9.9"), "127.0.0.2");
    // IPv6 sources are counted by /64: one host commonly holds a whole /64.
    assert.equal(clientAddress(plain, "2001:db8:0:1::5", undefined), "2001:db8:0:1::/64");
    assert.equal(clientAddress(plain, "2001:0db8:0000:0001:ffff::9", undefined), "2001:db8:0:1::/64");
    assert.equal(clientAddress(plain, "::1", undefined), "0:0:0:0::/64");
    assert.equal(clientAddress(proxy, "10.1.1.1", "1.1.1.1, 2.2.2.2"), "2.2.2.2");
    assert.equal(clientAddress(proxy, "::1", ["1.1.1.1", "2001:db8::1"]), "2001:db8:0:0::/64");
    // Fail closed: no readable entry counts the request under the proxy itself.
    assert.equal(clientAddress(proxy, "10.1.1.1", "unknown"), "10.1.1.1");
    assert.equal(clientAddress(proxy, "10.1.1.1", undefined), "10.1.1.1");
    assert.throws(() => httpSettings({ trustProxy: ["proxy.example"] }, "/mcp"), /must be an IP address/);
  });

  it("random mixes of unfinished, trickling, aborted and whole requests from several sources: the whole request is served, no slot leaks", async (t) => {
    const running = await serve({ maxInFlight: 16, maxPendingPerAddress: 3, minBodyRate: 2000, bodyGraceMs: 100 });
    const actor = fc.record({
      from: fc.constantFrom(ATTACKER, OTHER_ATTACKER, "127.0.0.4"),
      kind: fc.constantFrom("partial", "abort", "whole", "split"),
      length: fc.integer({ min: 1, max: 4000 }),
      sent: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    await runProperty(
      t,
      fc.array(actor, { minLength: 1, maxLength: 30 }),
      async (actors) => {
        const conns: RawConnection[] = [];
        for (const a of actors) {
          const body = a.kind === "whole" || a.kind === "split" ? signedEnvelope() : "x".repeat(a.length);
          const cut = Math.floor(body.length * a.sent);
          const length = a.kind === "whole" || a.kind === "split" ? Buffer.byteLength(body) : a.length;
          const conn = await partial(running, {
            localAddress: a.from,
            length,
            part: a.kind === "whole" ? body : body.slice(0, cut),
          });
          if (a.kind === "abort") conn.close();
          if (a.kind === "split") await conn.write(body.slice(cut));
          conns.push(conn);
        }
        await serverCaughtUp(running);
        const answer = await victim(running);
        assert.equal(answer.code, "ok");
        assert.ok(running.load().pendingBodies <= 8, "pending bodies stay within half of max-in-flight");
        // Every answer an actor got is signed and one the SPEC allows here.
        for (const conn of conns) {
          const response = parseResponsesOf(conn);
          if (response)
            assert.ok(["ok", "unavailable", "rate_limited", "bad_envelope", "replay"].includes(checked(response).code));
        }
        await drained(running, conns);
      },
      { runs: 40, seconds: 8 },
    );
  });
});

/** The first complete response on a connection so far, if any. */
function parseResponsesOf(conn: RawConnection): RawResponse | undefined {
  const end = conn.received.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const head = conn.received.subarray(0, end).toString("latin1").split("\r\n");
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length") ?? 0);
  if (conn.received.length < end + 4 + length) return undefined;
  return { status: Number(head[0]?.split(" ")[1]), headers, body: conn.received.subarray(end + 4, end + 4 + length) };
}

describe("smcp serve: the slow-body flags", () => {
  const dir = mkdtempSync(join(tmpdir(), "smcp-slow-"));
  const keys = [
    "--server-secret",
    "0123456789abcdef0123",
    "--client",
    "a=0123456789abcdef0123",
    "--config",
    join(dir, "none.json"),
  ];

  it("defaults come from the library; flags set them", async () => {
    const defaults = await resolveServeSettings(keys, captureIO());
    assert.ok(defaults);
    assert.equal(defaults.http.minBodyRate, DEFAULT_MIN_BODY_RATE);
    assert.equal(defaults.http.bodyGraceMs, DEFAULT_BODY_GRACE_MS);
    assert.equal(defaults.http.maxPendingPerAddress, DEFAULT_MAX_PENDING_PER_ADDRESS);
    assert.equal(defaults.http.maxInFlight, DEFAULT_MAX_IN_FLIGHT);
    assert.equal(defaults.http.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS);
    assert.deepEqual(defaults.http.trustProxy, []);
    const set = await resolveServeSettings(
      [
        ...keys,
        "--min-body-rate",
        "0",
        "--body-grace-ms",
        "500",
        "--max-pending-per-address",
        "8",
        "--trust-proxy",
        "10.0.0.5,::1",
        "--trust-proxy",
        "192.168.1.1",
      ],
      captureIO(),
    );
    assert.ok(set);
    assert.equal(set.http.minBodyRate, 0);
    assert.equal(set.http.bodyGraceMs, 500);
    assert.equal(set.http.maxPendingPerAddress, 8);
    assert.deepEqual(set.http.trustProxy, ["10.0.0.5", "::1", "192.168.1.1"]);
    for (const flag of ["--min-body-rate", "--body-grace-ms", "--max-pending-per-address", "--trust-proxy"]) {
      assert.match(SERVE_HELP, new RegExp(`${flag} `), flag);
    }
    assert.match(SERVE_HELP, new RegExp(`default ${DEFAULT_MIN_BODY_RATE}\\b`));
  });

  it("bad values are refused with a clear one-line error, exit 2", async () => {
    const cases: [string[], RegExp][] = [
      [["--min-body-rate=-1"], /--min-body-rate must be a whole number from 0 to/],
      [["--min-body-rate", "1k"], /--min-body-rate must be a whole number/],
      [["--body-grace-ms", "soon"], /--body-grace-ms must be a whole number from 0 to 600000/],
      [["--max-pending-per-address", "0"], /--max-pending-per-address must be a whole number from 1 to/],
      [["--trust-proxy", "proxy.internal"], /--trust-proxy must be IP addresses .*not 'proxy.internal'/],
      [["--trust-proxy", "10.0.0.1,"], /--trust-proxy must be IP addresses .*not ''/],
    ];
    for (const [flags, message] of cases) {
      const io = captureIO();
      assert.equal(await runCli(["serve", ...keys, ...flags], io), 2, flags.join(" "));
      assert.match(io.errText(), message, flags.join(" "));
      assert.doesNotMatch(io.errText(), /\n\s+at /);
    }
  });
});
