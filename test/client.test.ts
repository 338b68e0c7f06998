import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  batchSum,
  createClient,
  createServer,
  demoTools,
  inProcessTransport,
  Keyring,
  parseLossless,
  SmcpError,
  SmcpUsageError,
  signMessage,
  type Transport,
} from "../src/index.js";
import { toKeys } from "../src/protocol/keys.js";
import { CLIENT_ID, CLIENT_SECRET, pair, SERVER_ID, SERVER_SECRET } from "./helpers.js";

const serverKey = toKeys(SERVER_SECRET, "server")[0] as ReturnType<typeof toKeys>[number];

/** A transport that answers with whatever `answer` builds from the request. */
function fake(answer: (request: Record<string, unknown>) => string): Transport {
  return {
    async send(body) {
      return { body: answer(parseLossless(body).value as Record<string, unknown>) };
    },
  };
}

function response(request: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: "mcp/0.1",
    request_id: request.request_id,
    ts_ms: Date.now(),
    ok: true,
    server_id: SERVER_ID,
    status: "ok",
    result: { count: 1, total: 1 },
    error: null,
    ...overrides,
  };
}

const clientWith = (transport: Transport) =>
  createClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, serverId: SERVER_ID, serverSecret: SERVER_SECRET, transport });

async function rejectsLocally(transport: Transport, code: string): Promise<void> {
  await assert.rejects(clientWith(transport).call("batch_sum", { numbers: [1] }), (e: unknown) => {
    assert.ok(e instanceof SmcpError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.origin, "local");
    assert.equal(typeof e.received, "string", "carries what was received");
    return true;
  });
}

describe("client accepts a response only per SPEC §3", () => {
  it("rateLimitRetries that is not a count from 0 up is the caller's mistake, rejected before anything is sent", async () => {
    let sent = 0;
    const client = clientWith(
      fake((req) => {
        sent++;
        return signMessage(response(req), serverKey).body;
      }),
    );
    for (const rateLimitRetries of [Number.NaN, -1, 1.5, "3" as unknown as number]) {
      await assert.rejects(client.request("batch_sum", { numbers: [1] }, { rateLimitRetries }), SmcpUsageError);
    }
    assert.equal(sent, 0);
    // An untyped caller's null options are no options.
    const answer = await client.request("batch_sum", { numbers: [1] }, null as unknown as undefined);
    assert.equal(answer.status, "ok");
  });

  it("a correctly signed answer is a result", async () => {
    const result = await clientWith(fake((req) => signMessage(response(req), serverKey).body)).call(batchSum, { numbers: [1] });
    assert.deepEqual(result, { count: 1, total: 1 });
  });

  it("unsigned, non-JSON and empty bodies are errors, never results", async () => {
    await rejectsLocally(
      fake(() => '{"error": "bad signature"}'),
      "bad_envelope",
    );
    await rejectsLocally(
      fake(() => "<html>502 Bad Gateway</html>"),
      "bad_envelope",
    );
    await rejectsLocally(
      fake(() => ""),
      "bad_envelope",
    );
    await rejectsLocally(
      fake((req) => JSON.stringify(response(req))),
      "bad_envelope",
    );
  });

  it("mis-signed or tampered answers are bad_signature", async () => {
    const wrongKey = toKeys("some-other-server-secret", "x")[0] as ReturnType<typeof toKeys>[number];
    await rejectsLocally(
      fake((req) => signMessage(response(req), wrongKey).body),
      "bad_signature",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req), serverKey).body.replace('"total":1', '"total":2')),
      "bad_signature",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req), serverKey).body.replace('"total":1', '"total":1.0')),
      "bad_signature",
    );
  });

  it("an answer to another request, from another server, stale, or inconsistent is refused", async () => {
    await rejectsLocally(
      fake((req) => signMessage(response(req, { request_id: "someone-else" }), serverKey).body),
      "bad_envelope",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req, { server_id: "mcp-server-002" }), serverKey).body),
      "wrong_server",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req, { ts_ms: Date.now() - 600_000 }), serverKey).body),
      "stale",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req, { ok: false }), serverKey).body),
      "bad_envelope",
    );
    await rejectsLocally(
      fake((req) => signMessage(response(req, { extra: 1 }), serverKey).body),
      "bad_envelope",
    );
  });

  it("a verified error response throws with the server's code, origin remote", async () => {
    const { client, server } = pair();
    await assert.rejects(client.call("batch_sum", { numbers: [] }), (e: unknown) => {
      assert.ok(e instanceof SmcpError);
      assert.equal(e.code, "bad_args");
      assert.equal(e.origin, "remote");
      assert.ok(Array.isArray((e.details as { issues: unknown }).issues));
      return true;
    });
    await server.close();
  });
});

describe("keyring and rotation", () => {
  it("any live client key verifies; the server signs with its first key and clients accept any listed server key", async () => {
    const server = createServer({
      keyring: {
        serverId: SERVER_ID,
        serverSecrets: [{ secret: "new-server-secret-0001", kid: "k2" }, SERVER_SECRET],
        clients: { [CLIENT_ID]: ["new-client-secret-0001", CLIENT_SECRET] },
      },
      tools: demoTools,
    });
    const transport = inProcessTransport(server);
    for (const clientSecret of ["new-client-secret-0001", CLIENT_SECRET]) {
      const client = createClient({
        clientId: CLIENT_ID,
        clientSecret,
        serverId: SERVER_ID,
        serverSecret: ["new-server-secret-0001", SERVER_SECRET],
        transport,
      });
      const identity = await client.call("server_identity");
      assert.equal(identity.fingerprint, "k2");
    }
    const oldOnly = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport,
    });
    await assert.rejects(oldOnly.call("server_identity"), (e: unknown) => e instanceof SmcpError && e.code === "bad_signature");
    await server.close();
  });

  it("the fingerprint is a key label, not a function of the secret", async () => {
    const a = new Keyring({ serverId: "s", serverSecrets: "a-secret-of-16-bytes!", clients: {} });
    const b = new Keyring({ serverId: "s", serverSecrets: "another-secret-16-bytes", clients: {} });
    assert.equal(a.signingKey.kid, b.signingKey.kid);
  });

  it("refuses weak or shared secrets with a message that names the fix and not the secret", () => {
    const bad: [ConstructorParameters<typeof Keyring>[0], RegExp][] = [
      [{ serverId: "s", serverSecrets: "short", clients: {} }, /at least 16/],
      [{ serverId: "s", serverSecrets: SERVER_SECRET, clients: { c: "tiny" } }, /client 'c'.*at least 16/],
      [{ serverId: "s", serverSecrets: SERVER_SECRET, clients: { c: SERVER_SECRET } }, /server's secret/],
      [{ serverId: "s", serverSecrets: [], clients: {} }, /no secret/],
      [{ serverId: "", serverSecrets: SERVER_SECRET, clients: {} }, /serverId/],
      [{ serverId: "s", serverSecrets: SERVER_SECRET, clients: { "": CLIENT_SECRET } }, /client id is empty/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => new Keyring(options),
        (e: unknown) =>
          e instanceof SmcpUsageError &&
          message.test(e.message) &&
          !e.message.includes(SERVER_SECRET) &&
          !e.message.includes("tiny"),
      );
    }
  });

  it("client ids are looked up in a Map: __proto__ is unknown, and can be a real client", () => {
    const ring = new Keyring({ serverId: "s", serverSecrets: SERVER_SECRET, clients: new Map([["__proto__", CLIENT_SECRET]]) });
    assert.ok(ring.clientKeys("__proto__"));
    assert.equal(ring.clientKeys("constructor"), undefined);
    assert.equal(new Keyring({ serverId: "s", serverSecrets: SERVER_SECRET, clients: {} }).clientKeys("__proto__"), undefined);
  });
});

describe("callAndWait's timeout", () => {
  it("runs out while the start is unanswered: SmcpError timeout, not the transport's abort", async () => {
    // A server that never answers: the transport waits until its signal aborts.
    const silent = {
      send: (_body: string, options: { signal?: AbortSignal } = {}) =>
        new Promise<never>((_resolve, reject) => {
          // As fetch does: an already aborted signal rejects at once.
          if (options.signal?.aborted) return reject(options.signal.reason);
          // As fetch's open socket does, the wait holds the event loop open: the client's timeout timer is
          // unref'd (AbortSignal.timeout), so without this the test process could end with the call pending.
          const socket = setInterval(() => {}, 60_000);
          options.signal?.addEventListener(
            "abort",
            () => {
              clearInterval(socket);
              reject(options.signal?.reason);
            },
            { once: true },
          );
        }),
    };
    const client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: silent,
    });
    await assert.rejects(client.callAndWait("start_long_task", { seconds: 1, payload: {} }, { timeoutMs: 50 }), (e: unknown) => {
      assert.ok(e instanceof SmcpError, String(e));
      assert.equal(e.code, "timeout");
      return true;
    });
    const caller = new AbortController();
    const called = client.callAndWait("start_long_task", { seconds: 1, payload: {} }, { signal: caller.signal });
    caller.abort();
    await assert.rejects(called, (e: unknown) => e instanceof SmcpError && e.code === "cancelled");
  });
});
