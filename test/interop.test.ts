import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { SmcpError } from "../src/index.js";
import { CLIENT_ID, CLIENT_SECRET, pair, python, SERVER_ID, SERVER_SECRET } from "./helpers.js";

type Verified = { verified: boolean; shape_ok: boolean | null };

describe("interop with the seed's Python code", () => {
  const { server, client } = pair();
  after(() => server.close());

  it("envelopes signed by the seed verify here, for every tool, and our responses verify in the seed's code", async () => {
    const calls = [
      { tool: "server_identity", args: {} },
      { tool: "batch_sum", args: { numbers: [10, 20, 30] } },
      { tool: "batch_sum", args: { numbers: [0.1, 0.2, 1e-5, 6.0] } },
      // Raw JSON so Python holds an exact 2^60 + 1 and a float 6.0.
      {
        tool: "start_long_task",
        args_json: '{"seconds": 1, "payload": {"data": "complete", "big": 1152921504606846977, "f": 6.0, "s": "é😀"}}',
      },
      { tool: "list_tools", args: {} },
    ];
    const bodies = python<string[]>("sign", {
      items: calls.map((c) => ({ ...c, secret: CLIENT_SECRET, client_id: CLIENT_ID, server_id: SERVER_ID })),
    });
    const answers = [];
    for (const body of bodies) {
      const answer = await server.handle(Buffer.from(body, "utf8"));
      assert.ok(answer.response.ok, `${body} -> ${answer.body}`);
      answers.push(answer);
    }
    assert.equal(answers[1]?.response.result?.total, 60);
    const jobId = answers[3]?.response.result?.job_id;
    assert.equal(typeof jobId, "string");
    // poll_job signed by the seed too, polled to done (waiting on the job's own end).
    let final = "";
    for (let i = 0; i < 100; i++) {
      const [poll] = python<string[]>("sign", {
        items: [{ tool: "poll_job", args: { job_id: jobId }, secret: CLIENT_SECRET, client_id: CLIENT_ID, server_id: SERVER_ID }],
      });
      const answer = await server.handle(poll as string);
      answers.push(answer);
      if (answer.response.status === "done") {
        final = answer.body;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(final.includes('"big":1152921504606846977'), final);
    const verdicts = python<Verified[]>("verify", {
      items: answers.map((a) => ({ secret: SERVER_SECRET, body: a.body, kind: "response" })),
    });
    for (const v of verdicts) assert.deepEqual(v, { verified: true, shape_ok: true });
  });

  it("envelopes signed here verify in the seed's code", () => {
    const built = [
      client.buildEnvelope("batch_sum", { numbers: [1.5, 2, 1e21, 1e-7] }),
      client.buildEnvelope("start_long_task", { seconds: 2, payload: { "😀": "\u0000", "\uffff": [-0, 2n ** 70n] } }),
    ];
    const verdicts = python<Verified[]>("verify", { items: built.map((b) => ({ secret: CLIENT_SECRET, body: b.body })) });
    for (const v of verdicts) assert.equal(v.verified, true);
    const tampered = built[0]?.body.replace("1.5", "2.5") as string;
    const [bad] = python<Verified[]>("verify", { items: [{ secret: CLIENT_SECRET, body: tampered }] });
    assert.equal(bad?.verified, false);
  });

  it("responses of the seed's own server verify in our client, including its 6.0", () => {
    const requests = [client.buildEnvelope("server_identity"), client.buildEnvelope("batch_sum", { numbers: [1, 2, 3] })];
    const bodies = python<string[]>("seed-handle", {
      server_id: SERVER_ID,
      server_secret: SERVER_SECRET,
      client_secret: CLIENT_SECRET,
      bodies: requests.map((r) => r.body),
    });
    assert.ok(bodies[1]?.includes('"total": 6.0'), bodies[1]);
    const identity = client.verifyResponse(bodies[0] as string, requests[0]?.envelope.request_id as string);
    assert.equal(identity.result?.server_id, SERVER_ID);
    const sum = client.verifyResponse(bodies[1] as string, requests[1]?.envelope.request_id as string);
    assert.equal(sum.result?.total, 6);
    assert.equal(sum.status, "ok");
  });

  it("the seed's unsigned error bodies are errors in our client, carrying what was received", () => {
    const request = client.buildEnvelope("batch_sum", { numbers: [1] });
    const [body] = python<string[]>("seed-handle", {
      server_id: SERVER_ID,
      server_secret: SERVER_SECRET,
      client_secret: "not-the-client-secret-at-all",
      bodies: [request.body],
    });
    assert.equal(body, '{"error": "bad signature"}');
    assert.throws(
      () => client.verifyResponse(body as string, request.envelope.request_id),
      (e: unknown) => e instanceof SmcpError && e.code === "bad_envelope" && e.origin === "local" && e.received === body,
    );
  });
});
