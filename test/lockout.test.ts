/**
 * No stranger can lock a tenant out (SPEC §3): a request refused at any check
 * up to and including the nonce (bad signature, stale, wrong server, replay,
 * unknown client) costs the client it names nothing — no rate budget, no
 * job quota — and no envelope ever runs twice or after it was refused.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import {
  createClient,
  createServer,
  defineTool,
  inProcessTransport,
  MemoryJobStore,
  MemoryNonceStore,
  type SmcpClient,
  type SmcpServer,
} from "../src/index.js";
import { runProperty } from "./fuzz/run.js";
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

const servers: SmcpServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

/** A victim's world: a server whose rate never refills during a test, a sync tool and a job that never ends. */
function world(limits: { rate: number; burst: number; maxOpenJobs: number }) {
  const runs = { tick: 0, hold: 0 };
  const tick = defineTool({
    name: "tick",
    description: "counts its runs",
    input: z.strictObject({ i: z.number() }),
    output: z.strictObject({ n: z.number() }),
    handler: () => ({ n: ++runs.tick }),
  });
  const hold = defineTool({
    kind: "job",
    name: "hold",
    description: "runs until the server closes",
    input: z.strictObject({ i: z.number() }),
    output: z.strictObject({}),
    handler: (_args, ctx) => {
      runs.hold++;
      return new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
    },
  });
  const server = createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: SERVER_SECRET,
      clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET },
    },
    tools: [tick, hold],
    nonceStore: new MemoryNonceStore(),
    jobStore: new MemoryJobStore(),
    limits: { rate: limits.rate, burst: limits.burst, maxOpenJobs: limits.maxOpenJobs },
  });
  servers.push(server);
  const victim = clientOf(server, SERVER_ID);
  return { server, victim, runs };
}

function clientOf(server: SmcpServer, serverId: string, now?: () => number): SmcpClient {
  return createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId,
    serverSecret: SERVER_SECRET,
    transport: inProcessTransport(server),
    ...(now ? { now } : {}),
  });
}

/** The code (or status) of an answer, for comparing runs. */
function outcomeOf(answer: { response: { status: string; result: { code?: unknown } | null } }): string {
  return answer.response.status === "error" ? String(answer.response.result?.code) : answer.response.status;
}

/** A signature with one hex digit changed: a forgery under the victim's id. */
function forged(body: string): string {
  return body.replace(/"signature":"(.)/, (_m, c: string) => `"signature":"${c === "0" ? "1" : "0"}`);
}

describe("refused traffic costs its victim nothing (SPEC §3)", () => {
  it("the finding: 30 replays of a captured envelope at 5/s burst 5 are all `replay`, and the victim's next request runs", async () => {
    const { server, victim, runs } = world({ rate: 5, burst: 5, maxOpenJobs: 100 });
    const captured = victim.buildEnvelope("tick", { i: 0 });
    assert.equal((await server.handle(captured.body)).response.status, "ok");
    const codes = new Set<string>();
    for (let i = 0; i < 30; i++) codes.add(outcomeOf(await server.handle(captured.body)));
    assert.deepEqual([...codes], ["replay"]);
    for (let i = 0; i < 30; i++) codes.add(outcomeOf(await server.handle(forged(victim.buildEnvelope("tick", { i }).body))));
    assert.deepEqual([...codes].sort(), ["bad_signature", "replay"]);
    const fresh = victim.buildEnvelope("tick", { i: 1 });
    const answer = await server.handle(fresh.body);
    assert.equal(answer.httpStatus, 200);
    assert.equal(victim.verifyResponse(answer.body, fresh.envelope.request_id).status, "ok");
    assert.equal(runs.tick, 2, "the replays ran nothing");
  });

  it("a rate-limited envelope is spent: a captured copy never runs, even once the budget is back", async () => {
    const { server, victim, runs } = world({ rate: 1 / 60, burst: 0, maxOpenJobs: 100 });
    assert.equal(outcomeOf(await server.handle(victim.buildEnvelope("tick", { i: 0 }).body)), "ok");
    const refused = victim.buildEnvelope("tick", { i: 1 });
    assert.equal(outcomeOf(await server.handle(refused.body)), "rate_limited");
    // The same envelope on a second replica sharing the replay cache and with a whole budget: still refused.
    const replica = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
      nonceStore: server.nonceStore,
      jobStore: server.jobStore,
      tools: [...server.tools.list()].filter((tool) => tool.name === "tick"),
    });
    servers.push(replica);
    assert.equal(outcomeOf(await replica.handle(refused.body)), "replay");
    assert.equal(runs.tick, 1);
  });

  it("random interleavings: the victim's answers are what they would be without the attacker", async (t) => {
    type Op =
      | { who: "victim"; tool: "tick" | "hold" }
      | { who: "attacker"; kind: "replay" | "forge" | "wrong_server" | "stale"; pick: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ who: fc.constant("victim" as const), tool: fc.constantFrom("tick" as const, "hold" as const) }),
      fc.record({
        who: fc.constant("attacker" as const),
        kind: fc.constantFrom("replay" as const, "forge" as const, "wrong_server" as const, "stale" as const),
        pick: fc.nat(),
      }),
    );
    const scenario = fc.record({
      ops: fc.array(op, { minLength: 1, maxLength: 40 }),
      // A rate that can't refill within a test (one a minute), so both runs see the same budget.
      burst: fc.integer({ min: 0, max: 6 }),
      maxOpenJobs: fc.integer({ min: 1, max: 4 }),
    });
    await runProperty(
      t,
      scenario,
      async ({ ops, burst, maxOpenJobs }) => {
        const limits = { rate: 1 / 60, burst, maxOpenJobs };
        const attacked = world(limits);
        const alone = world(limits);
        const elsewhere = clientOf(attacked.server, "mcp-server-elsewhere");
        const past = clientOf(attacked.server, SERVER_ID, () => Date.now() - 10 * 60_000);
        const captured: string[] = [];
        const withAttacker: string[] = [];
        const without: string[] = [];
        let i = 0;
        for (const step of ops) {
          if (step.who === "victim") {
            i++;
            const sent = attacked.victim.buildEnvelope(step.tool, { i });
            captured.push(sent.body);
            withAttacker.push(outcomeOf(await attacked.server.handle(sent.body)));
            without.push(outcomeOf(await alone.server.handle(alone.victim.buildEnvelope(step.tool, { i }).body)));
            continue;
          }
          let body: string;
          let expected: string;
          if (step.kind === "replay" && captured.length > 0) {
            body = captured[step.pick % captured.length] as string;
            expected = "replay";
          } else if (step.kind === "wrong_server") {
            body = elsewhere.buildEnvelope("tick", { i: step.pick }).body;
            expected = "wrong_server";
          } else if (step.kind === "stale") {
            body = past.buildEnvelope("hold", { i: step.pick }).body;
            expected = "stale";
          } else {
            body = forged(attacked.victim.buildEnvelope("hold", { i: step.pick }).body);
            expected = "bad_signature";
          }
          assert.equal(outcomeOf(await attacked.server.handle(body)), expected, `the attacker's ${step.kind}`);
        }
        assert.deepEqual(withAttacker, without);
        assert.equal(attacked.runs.tick, alone.runs.tick, "the attacker ran nothing");
        assert.deepEqual(await attacked.server.jobStore.usage(CLIENT_ID), await alone.server.jobStore.usage(CLIENT_ID));
        await Promise.all([attacked.server.close(), alone.server.close()]);
      },
      { runs: 60, seconds: 3 },
    );
  });
});
