/**
 * The two HTTP transports (`httpTransport` over fetch, `undiciTransport` from
 * `smcp/http`) behave alike, against a real smcp server and against a raw
 * node:http server that answers badly: the same answers, the same errors
 * (`unavailable` naming the socket error, `too_large` for an answer past the
 * limit, declared or chunked, `unavailable` on a timeout, the caller's own
 * abort reason), the trace headers beside the body, and close().
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { type RunningServer, serveHttp, undiciTransport } from "../src/http.js";
import { createServer, demoTools, httpTransport, SmcpError, type Transport } from "../src/index.js";
import { CLIENT_ID, CLIENT_SECRET, clientAt, SERVER_ID, SERVER_SECRET } from "./helpers.js";

type Make = (url: string, options?: { timeoutMs?: number; maxResponseBytes?: number }) => Transport;
const TRANSPORTS: [string, Make][] = [
  ["httpTransport (fetch)", httpTransport],
  ["undiciTransport", undiciTransport],
];

/** A raw server whose answer each test sets: what it was sent is kept. */
let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end();
let seen: http.IncomingHttpHeaders = {};
const raw = http.createServer((req, res) => {
  seen = req.headers;
  req.resume();
  req.on("end", () => answer(req, res));
});
let rawUrl = "";
let running: RunningServer;

before(async () => {
  await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
  rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/mcp`;
  const server = createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
    tools: demoTools,
  });
  running = await serveHttp(server, { port: 0 });
});
after(async () => {
  raw.closeAllConnections();
  await new Promise((resolve) => raw.close(resolve));
  await running.close();
});

const failure = async (promise: Promise<unknown>): Promise<SmcpError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SmcpError, `an SmcpError, not ${String(error)}`);
    return error;
  }
  assert.fail("no error");
};

for (const [name, make] of TRANSPORTS) {
  describe(name, () => {
    it("calls a real server: verified answers, a job polled to its end", async () => {
      const transport = make(running.origin);
      const client = clientAt(running.origin, transport);
      assert.deepEqual(await client.call("batch_sum", { numbers: [1, 2, 3.5] }), { total: 6.5, count: 3 });
      const done = await client.callAndWait("start_long_task", { seconds: 1, payload: { x: 1 } }, { timeoutMs: 10_000 });
      assert.deepEqual(done, { x: 1 });
      await transport.close?.();
    });

    it("sends the body with the trace headers beside it, and returns the status and bytes as they came", async () => {
      answer = (_req, res) => {
        res.writeHead(418, { "content-type": "application/json" });
        res.end('{"not":"signed"}');
      };
      const transport = make(rawUrl);
      const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      const got = await transport.send('{"a":1}', { trace: { traceparent, tracestate: "k=v" } });
      assert.equal(got.status, 418);
      assert.equal(Buffer.from(got.body).toString(), '{"not":"signed"}');
      assert.equal(seen.traceparent, traceparent);
      assert.equal(seen.tracestate, "k=v");
      assert.equal(seen["content-type"], "application/json");
      await transport.close?.();
    });

    it("an answer past maxResponseBytes is too_large, declared or chunked", async () => {
      for (const chunked of [false, true]) {
        answer = (_req, res) => {
          const body = Buffer.alloc(5000, 0x20);
          res.writeHead(200, chunked ? {} : { "content-length": String(body.length) });
          if (chunked) for (let i = 0; i < 5; i++) res.write(body.subarray(i * 1000, (i + 1) * 1000));
          res.end(chunked ? undefined : body);
        };
        const transport = make(rawUrl, { maxResponseBytes: 4096 });
        const error = await failure(transport.send("{}"));
        assert.equal(error.code, "too_large", `chunked=${chunked}`);
        assert.equal(error.origin, "local");
        await transport.close?.();
      }
      // At the limit exactly: read whole.
      answer = (_req, res) => res.end(Buffer.alloc(4096, 0x20));
      const transport = make(rawUrl, { maxResponseBytes: 4096 });
      assert.equal((await transport.send("{}")).body.length, 4096);
      await transport.close?.();
    });

    it("no answer within timeoutMs is unavailable and says so; the caller's abort is its own reason", async () => {
      answer = () => {}; // never answers
      const transport = make(rawUrl, { timeoutMs: 200 });
      const error = await failure(transport.send("{}"));
      assert.equal(error.code, "unavailable");
      assert.match(error.message, /no answer within 200 ms/);
      const controller = new AbortController();
      const reason = new Error("the caller gave up");
      const sent = transport.send("{}", { signal: controller.signal });
      setImmediate(() => controller.abort(reason));
      await assert.rejects(sent, (thrown) => thrown === reason);
      raw.closeAllConnections();
      await transport.close?.();
    });

    it("a connection closed in the middle of the answer is unavailable, naming undici's code (both transports)", async () => {
      answer = (_req, res) => {
        res.writeHead(200, { "content-length": "100" });
        res.write("{", () => res.socket?.destroy());
      };
      const transport = make(rawUrl);
      const error = await failure(transport.send("{}"));
      assert.equal(error.code, "unavailable");
      assert.equal(error.message, `could not reach ${rawUrl}: UND_ERR_SOCKET`);
      await transport.close?.();
    });

    it("maxResponseBytes: Infinity reads any answer", async () => {
      answer = (_req, res) => res.end(Buffer.alloc(10_000, 0x20));
      const transport = make(rawUrl, { maxResponseBytes: Number.POSITIVE_INFINITY });
      assert.equal((await transport.send("{}")).body.length, 10_000);
      await transport.close?.();
    });

    it("a refused connection is unavailable, naming the socket error", async () => {
      // A port just closed (fetch refuses some well-known ports, such as 9, before connecting).
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const transport = make(`http://127.0.0.1:${port}/mcp`);
      const error = await failure(transport.send("{}"));
      assert.equal(error.code, "unavailable");
      assert.equal(error.message, `could not reach http://127.0.0.1:${port}/mcp: ECONNREFUSED`);
      await transport.close?.();
    });
  });
}
