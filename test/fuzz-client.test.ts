/**
 * Generative tests of the client (issue #8, SPEC §3): random and mutated
 * answers, through an in-process fake transport and through a raw HTTP
 * server, always end in `SmcpError` with `origin: "local"` within the
 * transport timeout, never a result and never a hang; only an answer that
 * is acceptable as built, and whose bytes still mean the same after
 * mutation, may give a result (or the remote error it reports). The client
 * runs in a worker (test/fuzz/targets/client.ts), so a hang is a reported
 * failure.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type AnswerRecipe, answerRecipe, HTTP_TIMEOUT_MS } from "./fuzz/answers.js";
import { runProperty } from "./fuzz/run.js";
import { Sandbox } from "./fuzz/sandbox.js";
import type { CallOutcome } from "./fuzz/targets/client.js";

const sandbox = new Sandbox(new URL("./fuzz/targets/client.ts", import.meta.url));
before(() => sandbox.ready());
after(() => sandbox.close());

const DEADLINE_MS = 15_000;

function judge(recipe: AnswerRecipe, outcome: CallOutcome, transport: "inprocess" | "http" | "undici"): void {
  const shown = `${JSON.stringify(outcome)} for ${JSON.stringify(recipe, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)).slice(0, 600)}`;
  assert.notEqual(outcome.kind, "other", `not an SmcpError: ${shown}`);
  const delivered = transport === "inprocess" || (recipe.delivery === "whole" && recipe.httpStatus !== 204);
  const acceptable = recipe.valid && outcome.same && delivered;
  if (!acceptable) {
    assert.equal(outcome.kind, "local", `an unacceptable answer gave ${outcome.kind}: ${shown}`);
  } else {
    assert.equal(outcome.kind, recipe.status === "error" ? "remote" : "result", shown);
  }
  if (transport !== "inprocess") {
    // Within the transport timeout (with slack for a loaded machine), never a hang.
    assert.ok(outcome.ms < HTTP_TIMEOUT_MS + 3_000, `took ${Math.round(outcome.ms)} ms: ${shown}`);
  }
}

describe("client: generative (issue #8)", () => {
  it("random and mutated answers through an in-process transport: SmcpError (local), never a result", async (t) => {
    await runProperty(
      t,
      answerRecipe,
      async (recipe) => {
        const outcome = await sandbox.call<CallOutcome>("call", { transport: "inprocess", recipe }, DEADLINE_MS);
        judge(recipe, outcome, "inprocess");
      },
      { runs: 500, seconds: 2 },
    );
  });

  // The same property over each HTTP transport (names kept: a property's seed comes from its name).
  for (const [transport, name] of [
    ["http", "random, mutated, stalled, cut and mislabelled answers over HTTP: SmcpError (local) within the timeout"],
    ["undici", "the same over undiciTransport (smcp/http): SmcpError (local) within the timeout"],
  ] as const) {
    it(name, async (t) => {
      await runProperty(
        t,
        answerRecipe,
        async (recipe) => {
          const outcome = await sandbox.call<CallOutcome>("call", { transport, recipe }, DEADLINE_MS);
          judge(recipe, outcome, transport);
        },
        { runs: 100, seconds: 3 },
      );
    });
  }

  it("an answer that is acceptable as built is accepted (the property above is not vacuous)", async (t) => {
    const acceptable = answerRecipe.filter((r) => r.valid && r.mutations.length === 0);
    await runProperty(
      t,
      acceptable,
      async (recipe) => {
        const outcome = await sandbox.call<CallOutcome>("call", { transport: "inprocess", recipe }, DEADLINE_MS);
        assert.equal(outcome.kind, recipe.status === "error" ? "remote" : "result", JSON.stringify(outcome));
      },
      { runs: 100, seconds: 1 },
    );
  });
});
