import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RunningServer, serveHttp } from "../src/http.js";
import { createServer, demoTools, type SmcpServer } from "../src/index.js";
import { generateEd25519, publicKeyOf } from "../src/protocol/keys.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  ED_CLIENT_ID,
  ED_CLIENT_PUBLIC,
  ED_SERVER_PUBLIC,
  ED_SERVER_SECRET,
  mixedPair,
  python,
  pythonAsync,
  SERVER_ID,
  SERVER_SECRET,
} from "./helpers.js";

type Verified = { verified: boolean; shape_ok: boolean | null };
type Pair = { secret: string; public: string };
type Step = {
  tool: string;
  http: number;
  verified: boolean;
  shape_ok: boolean;
  request_id_ok: boolean;
  status: string;
  result: unknown;
};

// Python's cryptography makes this client's key pair: its public key must parse here.
const [PY] = python<Pair[]>("ed25519-keygen", { n: 1 }) as [Pair];
const PY_CLIENT_ID = "python-ed25519";

/** A server answering the seed's HMAC client, an Ed25519 client whose keys Python made, and ours. */
function mixedServer(): SmcpServer {
  return createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: [SERVER_SECRET, ED_SERVER_SECRET],
      clients: { [CLIENT_ID]: CLIENT_SECRET, [PY_CLIENT_ID]: PY.public, [ED_CLIENT_ID]: ED_CLIENT_PUBLIC },
    },
    tools: demoTools,
  });
}

const calls = [
  { tool: "server_identity", args: {} },
  { tool: "batch_sum", args: { numbers: [10, 20, 30] } },
  { tool: "batch_sum", args_json: '{"numbers": [0.1, 0.2, 1e-05, 6.0, 1e16]}' },
  {
    tool: "start_long_task",
    args_json: '{"seconds": 1, "payload": {"big": 1152921504606846977, "f": 6.0, "s": "é😀\\u0000", "\\uffff": [-0.0]}}',
  },
];

describe("Ed25519 interop with Python's cryptography (SPEC §7), beside the seed's HMAC", () => {
  it("key strings agree both ways: Python's pair parses here, and Python derives our secrets' public keys", () => {
    assert.equal(publicKeyOf(PY.secret, "python"), PY.public);
    const ours = [generateEd25519(), generateEd25519(), generateEd25519()];
    assert.deepEqual(
      python<string[]>("ed25519-public", { secrets: ours.map((p) => p.secret) }),
      ours.map((p) => p.public),
    );
  });

  it("Python-signed Ed25519 envelopes and the seed's HMAC envelopes run on one server; each answer verifies in Python with its own algorithm only", async () => {
    const server = mixedServer();
    const base = { client_id: PY_CLIENT_ID, server_id: SERVER_ID };
    const edBodies = python<string[]>("ed25519-sign", { items: calls.map((c) => ({ ...c, ...base, secret: PY.secret })) });
    const hmacBodies = python<string[]>("sign", {
      items: calls.map((c) => ({ ...c, client_id: CLIENT_ID, server_id: SERVER_ID, secret: CLIENT_SECRET })),
    });
    const edAnswers: string[] = [];
    const hmacAnswers: string[] = [];
    // Interleaved: the same server, the same moment.
    for (let i = 0; i < calls.length; i++) {
      const [ed, hm] = await Promise.all([server.handle(edBodies[i] as string), server.handle(hmacBodies[i] as string)]);
      assert.equal(ed.response.ok, true, ed.body);
      assert.equal(hm.response.ok, true, hm.body);
      assert.match(ed.response.signature, /^[0-9a-f]{128}$/);
      assert.match(hm.response.signature, /^[0-9a-f]{64}$/);
      edAnswers.push(ed.body);
      hmacAnswers.push(hm.body);
    }
    const total = [0.1, 0.2, 1e-5, 6.0, 1e16].reduce((a, b) => a + b, 0);
    assert.equal(JSON.parse(edAnswers[2] as string).result.total, total);
    assert.equal(JSON.parse(hmacAnswers[2] as string).result.total, total);
    const edVerdicts = python<Verified[]>("ed25519-verify", {
      items: edAnswers.map((body) => ({ public: ED_SERVER_PUBLIC, body, kind: "response" })),
    });
    for (const v of edVerdicts) assert.deepEqual(v, { verified: true, shape_ok: true });
    const hmacVerdicts = python<Verified[]>("verify", {
      items: hmacAnswers.map((body) => ({ secret: SERVER_SECRET, body, kind: "response" })),
    });
    for (const v of hmacVerdicts) assert.deepEqual(v, { verified: true, shape_ok: true });
    // Neither kind verifies as the other.
    const crossed = [
      ...python<Verified[]>("verify", { items: edAnswers.map((body) => ({ secret: SERVER_SECRET, body })) }),
      ...python<Verified[]>("ed25519-verify", { items: hmacAnswers.map((body) => ({ public: ED_SERVER_PUBLIC, body })) }),
    ];
    for (const v of crossed) assert.equal(v.verified, false);
    await server.close();
  });

  it("envelopes our Ed25519 client signs verify in Python over the same canonical bytes; a tampered one does not", async () => {
    const { server, ed } = mixedPair();
    const built = [
      ed.buildEnvelope("batch_sum", { numbers: [1.5, 2, 1e21, 1e-7, -0] }),
      ed.buildEnvelope("start_long_task", { seconds: 2, payload: { "😀": "\u0000", "\uffff": [2n ** 70n, 6.5], "\u2028": "é" } }),
    ];
    const verdicts = python<Verified[]>("ed25519-verify", {
      items: built.map((b) => ({ public: ED_CLIENT_PUBLIC, body: b.body })),
    });
    for (const v of verdicts) assert.equal(v.verified, true);
    const [tampered, wrongKey] = python<Verified[]>("ed25519-verify", {
      items: [
        { public: ED_CLIENT_PUBLIC, body: built[0]?.body.replace("1.5", "2.5") },
        { public: ED_SERVER_PUBLIC, body: built[0]?.body },
      ],
    });
    assert.equal(tampered?.verified, false);
    assert.equal(wrongKey?.verified, false);
    await server.close();
  });
});

describe("over HTTP at the same time: the seed's HMAC client and a Python Ed25519 client", () => {
  let running: RunningServer;
  before(async () => {
    running = await serveHttp(mixedServer(), { port: 0 });
  });
  after(() => running.close());

  it("every step of both flows (a job polled to done included) verifies in Python", async () => {
    const flow = [
      { tool: "server_identity", args: {} },
      { tool: "batch_sum", args: { numbers: [10, 20, 30] } },
      { tool: "poll_job", args: { job_id: "unknown" } },
    ];
    const common = { url: running.url, server_id: SERVER_ID, calls: flow };
    const [hmac, ed] = await Promise.all([
      pythonAsync<Step[]>("http-client", {
        ...common,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        server_secret: SERVER_SECRET,
      }),
      pythonAsync<Step[]>("http-client", {
        ...common,
        client_id: PY_CLIENT_ID,
        client_key: PY.secret,
        server_key: ED_SERVER_PUBLIC,
      }),
    ]);
    for (const steps of [hmac, ed]) {
      for (const step of steps) {
        assert.equal(step.verified, true, `${step.tool}: signature`);
        assert.equal(step.shape_ok, true, `${step.tool}: shape`);
        assert.equal(step.request_id_ok, true, `${step.tool}: request_id`);
      }
      assert.equal((steps[1]?.result as { total?: number } | undefined)?.total, 60);
      assert.equal(steps[2]?.http, 404);
      assert.equal(steps.at(-1)?.status, "done");
      assert.deepEqual(steps.at(-1)?.result, { from: "python", f: 6 });
    }
    const identity = ed[0]?.result as { capabilities: { public_keys: string[]; signatures: string[] } };
    assert.deepEqual(identity.capabilities.public_keys, [ED_SERVER_PUBLIC]);
    assert.deepEqual(identity.capabilities.signatures, ["hmac-sha256", "ed25519"]);
  });
});
