import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { z } from "zod";
import { type RunningServer, serveHttp } from "../src/http.js";
import {
  createClient,
  createFetchHandler,
  createServer,
  defineTool,
  demoTools,
  httpTransport,
  parseLossless,
  protocolTools,
  type SmcpClient,
  type SmcpServer,
  type Tool,
  verifyCanonical,
} from "../src/index.js";
import { toKeys } from "../src/protocol/keys.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, signedEnvelope, until } from "./helpers.js";

const serverKeys = toKeys(SERVER_SECRET, "server");

/** A sync tool that waits for the test to release it (graceful shutdown). */
function gateTool() {
  const state = { started: 0, release: () => {} };
  const released = new Promise<void>((r) => {
    state.release = r;
  });
  const tool = defineTool({
    name: "gate",
    description: "waits for the test",
    input: z.strictObject({}),
    output: z.strictObject({ released: z.boolean() }),
    handler: async () => {
      state.started++;
      await released;
      return { released: true };
    },
  });
  return { tool, state };
}

function makeServer(tools: Tool[] = [...demoTools]) {
  return createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
    tools,
  });
}

type Raw = { status: number; headers: http.IncomingHttpHeaders; body: string };

function rawRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; path?: string },
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const target = new URL(init.path ?? "/mcp", url);
    const req = http.request(target, { method: init.method ?? "POST", headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

function expectSignedError(raw: Raw, status: number, code: string): void {
  assert.equal(raw.status, status, raw.body);
  assert.equal(raw.headers["content-type"], "application/json");
  const parsed = parseLossless(raw.body, { omitTopLevelKey: "signature" });
  const message = parsed.value as { signature: string; result: { code: string }; ok: boolean };
  assert.equal(message.ok, false);
  assert.equal(message.result.code, code);
  assert.ok(verifyCanonical(serverKeys, parsed.canonical, message.signature), "signed by the server");
}

const signedBody = (overrides: Record<string, unknown> = {}) => signedEnvelope(overrides);

describe("HTTP binding (SPEC §6)", () => {
  let server: SmcpServer;
  let running: RunningServer;
  let client: SmcpClient;
  const JSON_HEADERS = { "content-type": "application/json" };

  before(async () => {
    server = makeServer();
    running = await serveHttp(server, { port: 0, maxBodyBytes: 4096, bodyTimeoutMs: 300 });
    client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(running.origin), // no path: /mcp is added
    });
  });
  after(() => running.close());

  it("every built-in tool over real HTTP, and a job polled to done", async () => {
    assert.equal((await client.call("server_identity")).server_id, SERVER_ID);
    assert.deepEqual(await client.call("batch_sum", { numbers: [1, 2, 3.5] }), { count: 3, total: 6.5 });
    assert.equal(((await client.call("list_tools")).tools as unknown[]).length, protocolTools.length + demoTools.length);
    const result = await client.callAndWait("start_long_task", { seconds: 1, payload: { x: 1 } }, { pollIntervalMs: 50 });
    assert.deepEqual(result, { x: 1 });
  });

  it("HTTP status follows the error code; the body is always a signed response", async () => {
    expectSignedError(
      await rawRequest(running.origin, { headers: JSON_HEADERS, body: signedBody({ tool: "nope" }) }),
      404,
      "unknown_tool",
    );
    expectSignedError(
      await rawRequest(running.origin, { headers: JSON_HEADERS, body: signedBody({ args: { numbers: [] } }) }),
      400,
      "bad_args",
    );
    expectSignedError(
      await rawRequest(running.origin, { headers: JSON_HEADERS, body: signedBody({ client_id: "x" }) }),
      401,
      "unknown_client",
    );
    expectSignedError(await rawRequest(running.origin, { headers: JSON_HEADERS, body: signedBody({ ts_ms: 1 }) }), 401, "stale");
    const body = signedBody();
    assert.equal((await rawRequest(running.origin, { headers: JSON_HEADERS, body })).status, 200);
    expectSignedError(await rawRequest(running.origin, { headers: JSON_HEADERS, body }), 401, "replay");
  });

  it("refuses a wrong or missing Content-Type, invalid UTF-8, an empty body and a wrong method", async () => {
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/jsonx",
      "application/json; charset=latin1",
    ]) {
      expectSignedError(
        await rawRequest(running.origin, { headers: { "content-type": type }, body: signedBody() }),
        400,
        "bad_envelope",
      );
    }
    expectSignedError(await rawRequest(running.origin, { body: signedBody() }), 400, "bad_envelope");
    const ok = await rawRequest(running.origin, {
      headers: { "content-type": "Application/JSON; charset=UTF-8" },
      body: signedBody(),
    });
    assert.equal(ok.status, 200);
    const invalid = Buffer.concat([Buffer.from('{"v":"mcp/0.1","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expectSignedError(await rawRequest(running.origin, { headers: JSON_HEADERS, body: invalid }), 400, "bad_envelope");
    expectSignedError(await rawRequest(running.origin, { headers: JSON_HEADERS, body: "" }), 400, "bad_envelope");
    const get = await rawRequest(running.origin, { method: "GET" });
    expectSignedError(get, 400, "bad_envelope");
    assert.equal(get.headers.allow, "POST");
  });

  it("413 for a body over the cap, whether declared or chunked, without reading it all", async () => {
    const big = signedBody({ args: { numbers: [1], pad: "x".repeat(5000) } });
    expectSignedError(await rawRequest(running.origin, { headers: JSON_HEADERS, body: big }), 413, "too_large");
    // Chunked: no Content-Length; the server stops reading past the cap and answers.
    const chunked = await new Promise<Raw>((resolve, reject) => {
      const req = http.request(
        new URL("/mcp", running.origin),
        { method: "POST", headers: { ...JSON_HEADERS, "transfer-encoding": "chunked" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e)));
      req.write("x".repeat(3000));
      req.write("x".repeat(3000)); // never ended: the answer must come anyway
    });
    expectSignedError(chunked, 413, "too_large");
  });

  it("a slow client that never finishes its body gets a signed bad_envelope", async () => {
    const { port } = running.http.address() as net.AddressInfo;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write('POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"v":');
      });
      let data = "";
      socket.on("data", (c) => {
        data += c.toString();
      });
      socket.on("close", () => resolve(data));
      socket.on("error", reject);
    });
    const [head, body] = answer.split("\r\n\r\n") as [string, string];
    assert.match(head, /^HTTP\/1\.1 400/);
    expectSignedError({ status: 400, headers: { "content-type": "application/json" }, body }, 400, "bad_envelope");
    assert.match(body, /not received in time/);
  });

  it("GET /healthz answers without auth; other paths are 404", async () => {
    const health = await rawRequest(running.origin, { method: "GET", path: "/healthz" });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { ok: true, v: "mcp/0.1" });
    assert.equal(
      (await rawRequest(running.origin, { method: "POST", path: "/other", headers: JSON_HEADERS, body: "{}" })).status,
      404,
    );
  });

  it("keeps connections alive between requests", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const reused: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(new URL("/mcp", running.origin), { method: "POST", agent, headers: JSON_HEADERS }, (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        reused.push(req.reusedSocket);
        req.end(signedBody());
      });
    }
    agent.destroy();
    assert.deepEqual(reused, [false, true, true]);
  });
});

describe("graceful shutdown", () => {
  it("finishes in-flight requests, refuses new connections, closes the stores", async () => {
    const { tool, state } = gateTool();
    const server = makeServer([...demoTools, tool]);
    const running = await serveHttp(server, { port: 0 });
    const client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(running.url),
    });
    const inFlight = client.call("gate", {});
    await until(() => state.started === 1, 5000, "the request to reach the tool");
    const closed = running.close();
    await assert.rejects(
      rawRequest(running.origin, { headers: { "content-type": "application/json" }, body: "{}" }),
      /ECONNREFUSED/,
    );
    state.release();
    assert.deepEqual(await inFlight, { released: true });
    await closed;
  });
});

describe("web-standard fetch handler", () => {
  const server = makeServer();
  const handle = createFetchHandler(server, { maxBodyBytes: 2048 });
  after(() => server.close());
  const post = (
    body: string | ReadableStream<Uint8Array>,
    headers: Record<string, string> = { "content-type": "application/json" },
  ) => handle(new Request("http://localhost/anywhere", { method: "POST", headers, body, duplex: "half" } as RequestInit));

  it("answers a signed request with a signed response", async () => {
    const response = await post(signedBody());
    assert.equal(response.status, 200);
    const text = await response.text();
    const parsed = parseLossless(text, { omitTopLevelKey: "signature" });
    assert.ok(verifyCanonical(serverKeys, parsed.canonical, (parsed.value as { signature: string }).signature));
  });

  it("refuses a wrong content type, an oversized stream, and other methods; GET /healthz is the health check", async () => {
    const wrongType = await post(signedBody(), { "content-type": "text/plain" });
    expectSignedError(
      { status: wrongType.status, headers: { "content-type": "application/json" }, body: await wrongType.text() },
      400,
      "bad_envelope",
    );
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024).fill(0x20));
      },
    });
    const tooLarge = await post(stream);
    expectSignedError(
      { status: tooLarge.status, headers: { "content-type": "application/json" }, body: await tooLarge.text() },
      413,
      "too_large",
    );
    const put = await handle(new Request("http://localhost/x", { method: "PUT" }));
    assert.equal(put.status, 400);
    assert.equal((await handle(new Request("http://localhost/x"))).status, 400); // mounted: any path is the endpoint, and it takes POST
    assert.equal((await handle(new Request("http://localhost/healthz"))).status, 200);
  });
});
