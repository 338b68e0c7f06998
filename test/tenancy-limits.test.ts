import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { z } from "zod";
import { runCli } from "../src/cli/run.js";
import { serveHttp } from "../src/http.js";
import {
  defineTool,
  demoTools,
  type JsonObject,
  MemoryJobStore,
  MemoryNonceStore,
  type ResponseMessage,
  type ServerOptions,
  type SmcpClient,
  SmcpError,
  type SmcpServer,
} from "../src/index.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { CLIENT_ID, OTHER_CLIENT_ID, pair, until } from "./helpers.js";

/** Tools that count their runs, and a job that waits for the test. */
function countingTools() {
  const runs = { tick: 0, job: 0 };
  const gates = new Map<string, () => void>();
  const tick = defineTool({
    name: "tick",
    description: "counts its calls",
    input: z.strictObject({ secret_arg: z.string().optional() }),
    output: z.strictObject({ n: z.number() }),
    handler: async () => ({ n: ++runs.tick }),
  });
  const counted = defineTool({
    kind: "job",
    name: "counted",
    description: "counts its runs",
    input: z.strictObject({ payload: z.string().optional() }),
    output: z.strictObject({ payload: z.string().optional() }),
    handler: async ({ payload }) => {
      runs.job++;
      return payload === undefined ? {} : { payload };
    },
  });
  const held = defineTool({
    kind: "job",
    name: "held",
    description: "waits until the test opens its gate",
    input: z.strictObject({ gate: z.string() }),
    output: z.strictObject({}),
    handler: async ({ gate }, ctx) => {
      await new Promise<void>((resolve, reject) => {
        gates.set(gate, resolve);
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
      return {};
    },
  });
  return { tools: [...demoTools, tick, counted, held], runs, gates };
}

const servers: SmcpServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

function setup(options: Partial<ServerOptions>) {
  const counting = countingTools();
  const nonceStore = new MemoryNonceStore();
  const jobStore = new MemoryJobStore();
  const made = pair({ tools: counting.tools, nonceStore, jobStore, ...options });
  servers.push(made.server);
  return { ...made, ...counting, nonceStore, jobStore };
}

/** Sends one call straight to the server; the answer is verified (signature, request_id, server) by the client. */
async function send(server: SmcpServer, client: SmcpClient, tool: string, args: JsonObject = {}) {
  const { envelope, body } = client.buildEnvelope(tool, args);
  const answer = await server.handle(body);
  const response = client.verifyResponse(answer.body, envelope.request_id);
  return { http: answer.httpStatus, response };
}

/** A `rate_limited` answer as SPEC and issue 10 have it: 429, signed, an integer retry_after_ms. */
function assertRefused(answer: { http: number; response: ResponseMessage }, reason: string): number {
  assert.equal(answer.http, 429);
  assert.equal(answer.response.status, "error");
  assert.equal(answer.response.ok, false);
  assert.equal(answer.response.result?.code, "rate_limited");
  const details = answer.response.result?.details as { reason?: unknown; retry_after_ms?: unknown };
  assert.equal(details.reason, reason);
  assert.ok(Number.isSafeInteger(details.retry_after_ms) && (details.retry_after_ms as number) > 0, "integer retry_after_ms");
  return details.retry_after_ms as number;
}

/** How many of `n` quick calls a client gets through; the rest must be `rate_limited` for the rate. */
async function allowedOf(server: SmcpServer, client: SmcpClient, n: number): Promise<{ allowed: number; waits: number[] }> {
  let allowed = 0;
  const waits: number[] = [];
  for (let i = 0; i < n; i++) {
    const answer = await send(server, client, "tick");
    if (answer.response.ok) allowed++;
    else waits.push(assertRefused(answer, "rate"));
  }
  return { allowed, waits };
}

describe("per-client request rate (issue 10)", () => {
  it("past rate + burst: 429 rate_limited, signed, retry_after_ms; nothing stored or run, the nonce spent (never runs later); other clients unaffected", async () => {
    const { server, client, other, runs, jobStore, nonceStore } = setup({ limits: { rate: 1, burst: 1 } });
    assert.equal((await send(server, client, "tick")).response.ok, true);
    assert.equal((await send(server, client, "tick")).response.ok, true);
    const noncesBefore = nonceStore.size;
    const refused = client.buildEnvelope("counted", { payload: "refused" });
    const answer = await server.handle(refused.body);
    const wait = assertRefused(
      { http: answer.httpStatus, response: client.verifyResponse(answer.body, refused.envelope.request_id) },
      "rate",
    );
    assert.ok(wait <= 1000, `a 1/s rate asks for at most a second, not ${wait} ms`);
    assertRefused(await send(server, client, "tick"), "rate");
    assert.equal(nonceStore.size, noncesBefore + 2, "a rate-limited request spends its nonce");
    // Whoever captured the refused envelope can't run it later: it is a replay, whatever the budget.
    const again = await server.handle(refused.body);
    assert.equal(again.response.result?.code, "replay");
    assert.equal(runs.tick, 2);
    assert.equal(runs.job, 0);
    assert.deepEqual(await jobStore.list({ clientId: CLIENT_ID }), [], "no job stored");
    assert.deepEqual(await jobStore.usage(CLIENT_ID), { open: 0, bytes: 0 });
    // The other client has its own budget, whole.
    assert.equal((await send(server, other, "tick")).response.ok, true);
    assert.equal((await send(server, other, "counted", {})).response.status, "accepted");
    await until(() => runs.job === 1, 5000, "the other client's job");
  });

  it("a per-client override beats the default, both ways", async () => {
    const tightDefault = setup({ limits: { rate: 1, burst: 0, clients: { [OTHER_CLIENT_ID]: { rate: 100, burst: 100 } } } });
    assert.equal((await allowedOf(tightDefault.server, tightDefault.client, 4)).allowed, 1);
    assert.equal((await allowedOf(tightDefault.server, tightDefault.other, 20)).allowed, 20);
    const tightOverride = setup({ limits: { rate: 1000, clients: new Map([[CLIENT_ID, { rate: 1, burst: 0 }]]) } });
    assert.equal((await allowedOf(tightOverride.server, tightOverride.client, 4)).allowed, 1);
    assert.equal((await allowedOf(tightOverride.server, tightOverride.other, 20)).allowed, 20);
  });

  it("rate + burst is what a quick burst gets: burst 0 means the rate alone", async () => {
    const bursty = setup({ limits: { rate: 2, burst: 3 } });
    assert.equal((await allowedOf(bursty.server, bursty.client, 8)).allowed, 5);
    const noBurst = setup({ limits: { rate: 3, burst: 0 } });
    assert.equal((await allowedOf(noBurst.server, noBurst.client, 6)).allowed, 3);
  });

  it("a rate below one a second holds over its own period (1/m: one call, then wait about a minute)", async () => {
    const perMinute = setup({ limits: { rate: 1 / 60, burst: 0 } });
    const { allowed, waits } = await allowedOf(perMinute.server, perMinute.client, 3);
    assert.equal(allowed, 1);
    for (const wait of waits) assert.ok(wait > 30_000 && wait <= 60_000, `retry_after_ms ${wait}`);
  });

  it("the refusals reach the observer with their reason, once each", async () => {
    const events: { clientId: string; reason: string }[] = [];
    const { server, client } = setup({ limits: { rate: 1, burst: 0 }, observer: { rateLimited: (e) => events.push(e) } });
    await allowedOf(server, client, 3);
    assert.deepEqual(events, [
      { clientId: CLIENT_ID, reason: "rate" },
      { clientId: CLIENT_ID, reason: "rate" },
    ]);
  });
});

describe("per-client job quotas through the server (issue 10)", () => {
  it("max open jobs: the next job is refused (open_jobs) and not stored; an ended job frees a place; others unaffected", async () => {
    const events: string[] = [];
    const { server, client, other, gates, jobStore } = setup({
      limits: { maxOpenJobs: 2 },
      observer: { rateLimited: (e) => events.push(e.reason) },
    });
    const first = await send(server, client, "held", { gate: "a" });
    assert.equal(first.response.status, "accepted");
    assert.equal((await send(server, client, "held", { gate: "b" })).response.status, "accepted");
    assertRefused(await send(server, client, "held", { gate: "c" }), "open_jobs");
    assert.equal((await jobStore.list({ clientId: CLIENT_ID })).length, 2, "the refused job is not stored");
    // The other client has its own two places.
    for (const gate of ["x", "y"]) assert.equal((await send(server, other, "held", { gate })).response.status, "accepted");
    await until(() => gates.has("a"), 5000, "job a to run");
    gates.get("a")?.();
    const firstId = first.response.result?.job_id as string;
    await until(async () => (await jobStore.get(firstId))?.state === "done", 5000, "job a to end");
    assert.equal((await send(server, client, "held", { gate: "d" })).response.status, "accepted");
    assert.deepEqual(events, ["open_jobs"]);
    for (const open of gates.values()) open();
  });

  it("max stored bytes: args and results count; past it the job is refused (stored_bytes) with a long retry_after_ms", async () => {
    const { server, client, other, jobStore } = setup({ limits: { maxStoredBytes: 300 } });
    const payload = "p".repeat(100);
    const first = await send(server, client, "counted", { payload });
    const id = first.response.result?.job_id as string;
    await until(async () => (await jobStore.get(id))?.state === "done", 5000, "the first job");
    const usage = await jobStore.usage(CLIENT_ID);
    assert.ok(usage.bytes > 200 && usage.bytes <= 300, `args and result counted: ${usage.bytes}`);
    const wait = assertRefused(await send(server, client, "counted", { payload }), "stored_bytes");
    assert.ok(wait >= 1000, "retention frees bytes: a long wait");
    assert.equal((await jobStore.list({ clientId: CLIENT_ID })).length, 1);
    assert.equal((await send(server, other, "counted", { payload })).response.status, "accepted");
  });
});

describe("clients honour retry_after_ms (issue 10)", () => {
  it("callAndWait is refused, waits retry_after_ms, and succeeds; it never hammers", async () => {
    const seen: { at: number; code: string | undefined }[] = [];
    const { client } = setup({
      limits: { rate: 2, burst: 0 },
      observer: { request: (e) => seen.push({ at: performance.now(), code: e.code }) },
    });
    const told: number[] = [];
    const result = await client.callAndWait("counted", { payload: "through" }, { onRateLimited: (ms) => told.push(ms) });
    assert.deepEqual(result, { payload: "through" });
    assert.ok(told.length >= 1, "it was refused at least once on the way");
    const refusals = seen.filter((s) => s.code === "rate_limited");
    assert.equal(refusals.length, told.length, "each refusal was waited out once");
    assert.ok(refusals.length <= 3, `${refusals.length} refusals: it waits instead of retrying at once`);
    // Each retry came no sooner than the wait it was told.
    for (const [i, refused] of refusals.entries()) {
      const next = seen.find((s) => s.at > refused.at);
      assert.ok(next, "a retry followed");
      assert.ok(next.at - refused.at >= (told[i] as number) - 5, `retried after ${next.at - refused.at} ms, told ${told[i]}`);
    }
  });

  it("call (no retries by default) throws rate_limited with the wait in its details", async () => {
    const { client } = setup({ limits: { rate: 1, burst: 0 } });
    await client.call("tick", {});
    await assert.rejects(client.call("tick", {}), (e: unknown) => {
      assert.ok(e instanceof SmcpError);
      assert.equal(e.code, "rate_limited");
      assert.equal(e.origin, "remote");
      assert.ok(Number.isSafeInteger((e.details as { retry_after_ms?: number }).retry_after_ms));
      return true;
    });
  });

  it("smcp call prints the retry note and then the result", async () => {
    const { server, client } = setup({ limits: { rate: 1, burst: 0 } });
    const running = await serveHttp(server, { port: 0 });
    try {
      await client.call("tick", {}); // the second of this second is refused
      const io = captureIO({ SMCP_CONFIG: "/nonexistent/keyring.json" });
      assert.equal(await runCli(["call", "tick", "{}", ...connectionFlags(running.url)], io), 0);
      assert.deepEqual(JSON.parse(io.outText()), { n: 2 });
      assert.match(io.errText(), /^rate limited; retrying in \d\.\d s$/m);
    } finally {
      await running.close();
    }
  });
});
