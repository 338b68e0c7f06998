import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { z } from "zod";
import {
  defineTool,
  demoTools,
  ERROR_CODES,
  type ErrorCode,
  type HandleResult,
  MemoryJobStore,
  MemoryNonceStore,
  type NonceStore,
  parseLossless,
  signMessage,
  verifyCanonical,
} from "../src/index.js";
import { toKeys } from "../src/protocol/keys.js";
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_SECRET, pair, SERVER_ID, SERVER_SECRET, spyTool, until } from "./helpers.js";

const serverKeys = toKeys(SERVER_SECRET, "server");
const clientKey = toKeys(CLIENT_SECRET, "client")[0] as ReturnType<typeof toKeys>[number];
const otherKey = toKeys(OTHER_CLIENT_SECRET, "other")[0] as ReturnType<typeof toKeys>[number];

function fields(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: "mcp/0.1",
    request_id: randomUUID(),
    ts_ms: Date.now(),
    client_id: CLIENT_ID,
    server_id: SERVER_ID,
    tool: "spy",
    args: { n: 1 },
    nonce: randomUUID(),
    ...overrides,
  };
}

const signed = (overrides: Record<string, unknown> = {}, key = clientKey) => signMessage(fields(overrides), key).body;

function setup(extra: { nonceStore?: NonceStore; jobStore?: MemoryJobStore; hideToolErrors?: boolean } = {}) {
  const calls = { spy: 0, failing: 0 };
  const spy = spyTool(calls);
  const failing = defineTool({
    name: "failing",
    description: "throws an internal error",
    input: z.strictObject({}),
    output: z.strictObject({}),
    handler: () => {
      calls.failing++;
      throw new Error("db password is ******");
    },
  });
  const wrongOutput = defineTool({
    name: "wrong_output",
    description: "returns the wrong shape",
    input: z.strictObject({}),
    output: z.strictObject({ n: z.number() }),
    handler: () => ({ n: "not a number" }) as unknown as { n: number },
  });
  const notJson = defineTool({
    name: "not_json",
    description: "returns a non-JSON value",
    input: z.strictObject({}),
    output: z.strictObject({ when: z.any() }),
    handler: () => ({ when: new Date(0) }),
  });
  const brokenSchema = defineTool({
    name: "broken_schema",
    description: "its output schema throws",
    input: z.strictObject({}),
    output: z.strictObject({}).refine(() => {
      throw new Error("schema bug");
    }),
    handler: () => ({}),
  });
  const nonceStore = extra.nonceStore ?? new MemoryNonceStore();
  const jobStore = extra.jobStore ?? new MemoryJobStore();
  const errors: unknown[] = [];
  const { server, client, other } = pair({
    tools: [...demoTools, spy, failing, wrongOutput, notJson, brokenSchema],
    nonceStore,
    jobStore,
    onError: (e) => errors.push(e),
    ...(extra.hideToolErrors ? { hideToolErrors: true } : {}),
  });
  return { server, client, other, calls, nonceStore, jobStore, errors };
}

function expectError(result: HandleResult, code: ErrorCode, requestId?: string): void {
  const { response, body, httpStatus } = result;
  assert.equal(response.status, "error", body);
  assert.equal(response.ok, false);
  assert.equal(response.result?.code, code, body);
  assert.ok(response.error?.startsWith(`${code}: `), response.error ?? "");
  assert.equal(httpStatus, ERROR_CODES[code].http);
  if (requestId !== undefined) assert.equal(response.request_id, requestId);
  // Signed by the server even when the request failed before authentication.
  const parsed = parseLossless(body, { omitTopLevelKey: "signature" });
  assert.ok(verifyCanonical(serverKeys, parsed.canonical, response.signature), "error response must be signed");
  assert.ok(!/\n\s+at /.test(body), "no stack trace");
  for (const secret of [SERVER_SECRET, CLIENT_SECRET, OTHER_CLIENT_SECRET]) assert.ok(!body.includes(secret), "no secret");
}

describe("negative checklist: nothing executed, nothing stored (SPEC §3, §5)", () => {
  it("bad_envelope: not JSON, wrong shape, extra or missing field, bad types, parser limits", async () => {
    const { server, calls, nonceStore } = setup();
    const good = fields();
    const cases: (string | Uint8Array)[] = [
      "",
      "not json",
      "[]",
      "null",
      '{"v":"mcp/0.1"}',
      signed({ extra: 1 }),
      signed({ v: "mcp/0.2" }),
      signed({ ts_ms: "123" }),
      signed({ ts_ms: 1.5 }),
      signed({ args: [] }),
      signed({ args: null }),
      signed({ client_id: 7 }),
      signed({ nonce: "" }),
      signed({ tool: "x".repeat(300) }),
      JSON.stringify({ ...good, signature: undefined }),
      `{"request_id":"a","request_id":"b"}`,
      `{"args":${"[".repeat(70)}${"]".repeat(70)}}`,
      signed().replace('"args":{"n":1}', '"args":{"n":NaN}'),
      new Uint8Array([0x7b, 0xff, 0x7d]),
    ];
    for (const body of cases) expectError(await server.handle(body), "bad_envelope");
    expectError(await server.handle(signed({ request_id: 42 })), "bad_envelope", "");
    const named = fields({ extra: true });
    expectError(await server.handle(signMessage(named, clientKey).body), "bad_envelope", named.request_id as string);
    assert.equal(calls.spy, 0);
    assert.equal((nonceStore as MemoryNonceStore).size, 0);
    await server.close();
  });

  it("unknown_client, including __proto__ and constructor as client ids", async () => {
    const { server, calls, nonceStore } = setup();
    for (const id of ["nobody", "__proto__", "constructor", "toString", "hasOwnProperty", ""]) {
      expectError(await server.handle(signed({ client_id: id })), "unknown_client");
    }
    assert.equal(calls.spy, 0);
    assert.equal((nonceStore as MemoryNonceStore).size, 0);
    await server.close();
  });

  it("bad_signature: tampered field, wrong key, malformed signature", async () => {
    const { server, calls, nonceStore } = setup();
    const body = signed();
    const cases = [
      body.replace('"args":{"n":1}', '"args":{"n":2}'),
      body.replace('"tool":"spy"', '"tool":"batch_sum"'),
      body.replace(/"ts_ms":(\d+)/, (_, ts) => `"ts_ms":${Number(ts) + 1}`),
      body.replace('"n":1', '"n":1.0'), // same number to JS, different canonical text
      signed({}, otherKey),
      body.replace(/"signature":"([0-9a-f]+)"/, (_, s: string) => `"signature":"${s.toUpperCase()}"`),
      body.replace(/"signature":"([0-9a-f]+)"/, (_, s: string) => `"signature":"${s.slice(0, 63)}"`),
      body.replace(/"signature":"([0-9a-f]+)"/, (_, s: string) => `"signature":"${s.slice(0, 63)}g"`),
      body.replace(/"signature":"([0-9a-f]+)"/, '"signature":""'),
    ];
    for (const c of cases) expectError(await server.handle(c), "bad_signature");
    assert.equal(calls.spy, 0);
    assert.equal((nonceStore as MemoryNonceStore).size, 0);
    await server.close();
  });

  it("wrong_server, stale and future ts_ms", async () => {
    const { server, calls, nonceStore } = setup();
    expectError(await server.handle(signed({ server_id: "mcp-server-002" })), "wrong_server");
    expectError(await server.handle(signed({ ts_ms: Date.now() - 301_000 })), "stale");
    expectError(await server.handle(signed({ ts_ms: Date.now() + 301_000 })), "stale");
    // Beyond 2^53 ts_ms is not a safe integer: the shape is wrong before the clock is consulted (SPEC §1).
    expectError(await server.handle(signed({ ts_ms: 2n ** 80n })), "bad_envelope");
    assert.equal(calls.spy, 0);
    assert.equal((nonceStore as MemoryNonceStore).size, 0);
    await server.close();
  });

  it("replay: the same envelope twice runs once; concurrent copies run once", async () => {
    const { server, calls } = setup();
    const body = signed();
    assert.equal((await server.handle(body)).response.status, "ok");
    expectError(await server.handle(body), "replay");
    const burst = signed();
    const results = await Promise.all(Array.from({ length: 50 }, () => server.handle(burst)));
    assert.equal(results.filter((r) => r.response.ok).length, 1);
    for (const r of results.filter((r) => !r.response.ok)) expectError(r, "replay");
    assert.equal(calls.spy, 2);
    await server.close();
  });

  it("unknown_tool, including __proto__ and constructor as tool names", async () => {
    const { server, calls } = setup();
    for (const tool of ["nope", "__proto__", "constructor", "toString"]) {
      expectError(await server.handle(signed({ tool })), "unknown_tool");
    }
    assert.equal(calls.spy, 0);
    await server.close();
  });

  it("bad_args: extra, missing and mistyped args, __proto__ as an args key, integers beyond 2^53", async () => {
    const { server, calls, jobStore } = setup();
    const cases: Record<string, unknown>[] = [
      { tool: "spy", args: { n: 1, extra: 2 } },
      { tool: "spy", args: {} },
      { tool: "spy", args: { n: "1" } },
      { tool: "batch_sum", args: { numbers: [] } },
      { tool: "batch_sum", args: { numbers: ["1", 2] } },
      { tool: "batch_sum", args: { numbers: [2n ** 60n] } }, // never silently rounded
      { tool: "batch_sum", args: { numbers: [1.7e308, 1.7e308] } }, // sum overflows
      { tool: "start_long_task", args: { seconds: 0 } },
      { tool: "start_long_task", args: { seconds: 21 } },
      { tool: "start_long_task", args: { seconds: 1.5 } },
      { tool: "start_long_task", args: { seconds: 1, payload: [] } },
    ];
    for (const c of cases) expectError(await server.handle(signed(c)), "bad_args");
    // A "__proto__" key in args, exactly as it arrives in JSON text.
    const proto = signMessage(fields({ args: JSON.parse('{"n":1,"__proto__":{"admin":true}}') }), clientKey).body;
    assert.ok(proto.includes('"__proto__"'));
    expectError(await server.handle(proto), "bad_args");
    const ctor = signed({ tool: "poll_job", args: { job_id: "x", constructor: 1 } });
    expectError(await server.handle(ctor), "bad_args");
    assert.equal(calls.spy, 0);
    assert.equal(jobStore.size, 0);
    assert.equal(({} as Record<string, unknown>).admin, undefined);
    await server.close();
  });

  it("unknown_job: unknown id, and another client's job (poll and cancel)", async () => {
    const { server, client, other } = setup();
    expectError(await server.handle(signed({ tool: "poll_job", args: { job_id: "no-such-job" } })), "unknown_job");
    expectError(await server.handle(signed({ tool: "cancel_job", args: { job_id: "__proto__" } })), "unknown_job");
    const { job_id } = (await client.call("start_long_task", { seconds: 5, payload: {} })) as { job_id: string };
    for (const tool of ["poll_job", "cancel_job"]) {
      const answer = await other.request(tool, { job_id });
      assert.equal(answer.result?.code, "unknown_job");
    }
    assert.equal((await client.poll(job_id)).status, "running", "the other client's cancel did nothing");
    await server.close();
  });

  it("too_large", async () => {
    const { server, calls } = setup();
    const big = signed({ args: { n: 1, pad: "x".repeat(1024 * 1024) } });
    expectError(await server.handle(big), "too_large");
    expectError(await server.handle(Buffer.from(big)), "too_large");
    assert.equal(calls.spy, 0);
    await server.close();
  });

  it("rate_limited when the job store is full of unfinished jobs; nothing stored", async () => {
    const jobStore = new MemoryJobStore({ maxJobs: 2 });
    const { server } = setup({ jobStore });
    for (let i = 0; i < 2; i++)
      assert.equal((await server.handle(signed({ tool: "start_long_task", args: { seconds: 20 } }))).response.status, "accepted");
    expectError(await server.handle(signed({ tool: "start_long_task", args: { seconds: 20 } })), "rate_limited");
    assert.equal(jobStore.size, 2);
    await server.close();
  });

  it("tool_failed carries the thrown message (SPEC §5), or hides it when told; bad_output for a wrong shape or a non-JSON value; internal for a broken schema", async () => {
    const { server, calls, errors } = setup();
    const shown = await server.handle(signed({ tool: "failing", args: {} }));
    assert.equal(shown.response.error, "tool_failed: db password is ******", "the tool's own words reach its caller");
    const hidden = setup({ hideToolErrors: true });
    expectError(await hidden.server.handle(signed({ tool: "failing", args: {} })), "tool_failed");
    assert.equal(
      (await hidden.server.handle(signed({ tool: "failing", args: {} }))).response.error,
      "tool_failed: the tool failed",
    );
    await hidden.server.close();
    expectError(await server.handle(signed({ tool: "wrong_output", args: {} })), "bad_output");
    expectError(await server.handle(signed({ tool: "not_json", args: {} })), "bad_output");
    expectError(await server.handle(signed({ tool: "broken_schema", args: {} })), "internal");
    assert.equal(calls.failing, 1);
    assert.ok(errors.length >= 3, "internal errors reach onError, not the wire");
    await server.close();
  });

  it("unavailable when the replay store is down: fail closed, nothing executed", async () => {
    const down: NonceStore = {
      reserve: async () => {
        throw new Error(`ECONNREFUSED redis://:${SERVER_SECRET}@127.0.0.1`);
      },
      close: async () => {},
    };
    const { server, calls } = setup({ nonceStore: down });
    expectError(await server.handle(signed()), "unavailable");
    assert.equal(calls.spy, 0);
    await server.close();
  });
});

describe("sync tool timeouts", () => {
  it("a sync tool past its timeoutMs answers tool_failed, its signal fires, and its context still reaches the caller's jobs", async () => {
    const seen = { aborted: false, jobsReachable: false };
    const slow = defineTool({
      name: "slow_sync",
      description: "waits for its signal",
      timeoutMs: 50,
      input: z.strictObject({}),
      output: z.strictObject({}),
      handler: async (_args, ctx) => {
        seen.jobsReachable = (await ctx.jobs.get("no-such-job")) === undefined;
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        seen.aborted = ctx.signal.aborted;
        return {};
      },
    });
    const { server } = pair({ tools: [...demoTools, slow] });
    const answer = await server.handle(signed({ tool: "slow_sync", args: {} }));
    expectError(answer, "tool_failed");
    assert.match(answer.response.error ?? "", /timed out after 50 ms/);
    assert.equal(seen.jobsReachable, true);
    await until(() => seen.aborted, 2000, "the handler's signal");
    await server.close();
  });
});
