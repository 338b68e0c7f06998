/**
 * Generative tests of the server (issue #8): hostile, mutated and random
 * requests through `SmcpServer.handle()` and through real HTTP always get a
 * signed answer with a SPEC §5 code and the SPEC §6 status, at most 16 KiB
 * when an error, reflecting nothing from the request but its request_id;
 * requests refused before the nonce step store nothing and run nothing.
 * The server runs in a worker (test/fuzz/targets/server.ts), so a hang is
 * a reported failure.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { EnvelopeSchema, plainEnvelope } from "../src/protocol/messages.js";
import { type RequestCase, requestCase } from "./fuzz/envelopes.js";
import { anyDocument, envelopeText } from "./fuzz/json.js";
import { byteMutations, mutateBytes, mutateUnits, unitMutations } from "./fuzz/mutate.js";
import { runProperty } from "./fuzz/run.js";
import { Sandbox } from "./fuzz/sandbox.js";
import type { Effects, Handled } from "./fuzz/targets/server.js";
import { BEFORE_NONCE, checkAnswer, requestIdOf } from "./fuzz/wire.js";

const sandbox = new Sandbox(new URL("./fuzz/targets/server.ts", import.meta.url));
before(() => sandbox.ready());
after(() => sandbox.close());

const DEADLINE_MS = 15_000;

/** Side effects one answer may have had, by its code. */
function checkEffects(before: Effects, after: Effects, code: string, tool: string | undefined): void {
  const stored = after.stored - before.stored;
  const executed = after.executed - before.executed;
  const created = after.created - before.created;
  const shown = `${code}: stored ${stored}, executed ${executed}, created ${created}`;
  if (BEFORE_NONCE.has(code) || code === "replay") {
    assert.deepEqual([stored, executed, created], [0, 0, 0], `refused before running, yet ${shown}`);
    return;
  }
  assert.equal(stored, 1, `past the nonce step, one nonce is stored: ${shown}`);
  if (code !== "ok") assert.equal(executed, 0, shown);
  else if (tool === "spy") assert.equal(executed, 1, shown);
  if (code !== "accepted") assert.equal(created, 0, shown);
  else assert.ok(created <= 1, shown);
}

/** The tool a request names, if it parses. */
function toolOf(body: string | Uint8Array): string | undefined {
  try {
    const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
    const tool = (JSON.parse(text) as { tool?: unknown }).tool;
    return typeof tool === "string" ? tool : undefined;
  } catch {
    return undefined;
  }
}

async function handle(
  body: string | Uint8Array,
  markers: readonly string[],
): Promise<{ code: string; before: Effects; handled: Handled }> {
  const before = await sandbox.call<Effects>("effects", null, DEADLINE_MS);
  const handled = await sandbox.call<Handled>("handle", body, DEADLINE_MS);
  const checked = checkAnswer(handled, { markers, requestId: requestIdOf(body) });
  checkEffects(before, handled.effects, checked.code, toolOf(body));
  return { code: checked.code, before, handled };
}

/** One recipe case: the exact code, then (when it passed the nonce step) `replay` for the same bytes. */
async function handleCase(c: RequestCase): Promise<void> {
  await sandbox.call("reset", null, DEADLINE_MS);
  const first = await handle(c.body, c.markers);
  assert.equal(first.code, c.expected, `expected ${c.expected}, got ${first.code} for ${c.why}: ${c.body.slice(0, 400)}`);
  if (c.replayable) {
    const again = await handle(c.body, c.markers);
    assert.equal(again.code, "replay", `the same bytes again: ${again.code}`);
  }
}

describe("server handle(): generative (issue #8)", () => {
  it("hostile envelopes get the exact SPEC §3 code, signed, bounded, reflecting nothing; a repeat is replay", async (t) => {
    await runProperty(t, requestCase, handleCase, { runs: 300, seconds: 3 });
  });

  it("byte and UTF-16 mutations of signed envelopes, and random documents: always a signed SPEC answer", async (t) => {
    const input = fc.oneof(
      fc
        .tuple(requestCase, byteMutations)
        .map(([c, m]) => ({ body: mutateBytes(c.body, m) as string | Uint8Array, markers: c.markers })),
      fc
        .tuple(requestCase, unitMutations)
        .map(([c, m]) => ({ body: mutateUnits(c.body, m) as string | Uint8Array, markers: c.markers })),
      fc
        .tuple(envelopeText, byteMutations)
        .map(([text, m]) => ({ body: mutateBytes(text, m) as string | Uint8Array, markers: [] })),
      anyDocument.map((text) => ({ body: text as string | Uint8Array, markers: [] })),
      fc.uint8Array({ maxLength: 300 }).map((body) => ({ body: body as string | Uint8Array, markers: [] })),
    );
    await runProperty(
      t,
      input,
      async ({ body, markers }) => {
        await sandbox.call("reset", null, DEADLINE_MS);
        await handle(body, markers);
      },
      { runs: 300, seconds: 3 },
    );
  });
});

describe("server over HTTP: generative (issue #8)", () => {
  let url: string | undefined;
  let urlOfStart = 0;
  const endpoint = async () => {
    // A restarted sandbox (after a hang) serves on a new port.
    if (url === undefined || urlOfStart !== sandbox.starts) {
      url = await sandbox.call<string>("serve", {}, DEADLINE_MS);
      urlOfStart = sandbox.starts;
    }
    return url;
  };

  async function post(body: string | Uint8Array, markers: readonly string[], expected?: string): Promise<void> {
    const target = await endpoint();
    const before = await sandbox.call<Effects>("effects", null, DEADLINE_MS);
    let response: Response;
    let bytes: Uint8Array;
    try {
      response = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(DEADLINE_MS),
      });
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      // Restart the sandbox if the server is stuck, so the next case starts clean.
      await sandbox.call("effects", null, 2_000).catch(() => undefined);
      throw new Error(`no HTTP answer: ${(error as Error).message}`);
    }
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    const checked = checkAnswer({ body: bytes, httpStatus: response.status }, { markers, requestId: requestIdOf(body) });
    if (expected !== undefined) assert.equal(checked.code, expected);
    const afterEffects = await sandbox.call<Effects>("effects", null, DEADLINE_MS);
    checkEffects(before, afterEffects, checked.code, toolOf(body));
  }

  it("hostile, mutated and random bodies over real HTTP: a signed answer with the SPEC §6 status, never a hang", async (t) => {
    const input = fc.oneof(
      requestCase.map((c) => ({
        body: c.body as string | Uint8Array,
        markers: c.markers,
        expected: c.expected as string | undefined,
      })),
      fc
        .tuple(requestCase, byteMutations)
        .map(([c, m]) => ({ body: mutateBytes(c.body, m) as string | Uint8Array, markers: c.markers, expected: undefined })),
      anyDocument.map((text) => ({ body: text as string | Uint8Array, markers: [] as string[], expected: undefined })),
    );
    await runProperty(
      t,
      input,
      async ({ body, markers, expected }) => {
        await sandbox.call("reset", null, DEADLINE_MS);
        await post(body, markers, expected);
      },
      { runs: 150, seconds: 3 },
    );
  });
});

describe("envelope fast path (issue #8)", () => {
  const validId = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ minLength: 250, maxLength: 256 }));
  const id = fc.oneof(validId, fc.string({ minLength: 257, maxLength: 260 }));
  const anyValue = fc.oneof(
    id,
    fc.integer(),
    fc.double(),
    fc.bigInt(),
    fc.constantFrom(null, true, undefined, 1e20, 2 ** 53, -(2 ** 53), Number.NaN, -0, 1.5),
    fc.constantFrom({}, [], Object.create(null) as object, new Date(0), { a: 1 }),
  );
  const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: anyValue });
  const plain = fc.record({
    v: fc.constant("mcp/0.1"),
    request_id: validId,
    ts_ms: fc.maxSafeInteger(),
    client_id: validId,
    server_id: validId,
    tool: validId,
    args: fc.oneof(
      fc.constant({}),
      fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
      fc.constant(Object.create(null) as object),
    ),
    nonce: fc.string({ minLength: 1, maxLength: 256 }),
    signature: fc.string(),
  });
  const near = fc
    .record({
      v: field(fc.constantFrom("mcp/0.1", "mcp/0.2")),
      request_id: field(id),
      ts_ms: field(fc.maxSafeInteger()),
      client_id: field(id),
      server_id: field(id),
      tool: field(id),
      args: field(fc.constant({})),
      nonce: field(id),
      signature: field(fc.string()),
    })
    .chain((r) =>
      fc
        .tuple(fc.subarray(Object.keys(r), { maxLength: 2 }), fc.dictionary(fc.string(), anyValue, { maxKeys: 2 }), fc.boolean())
        .map(([drop, extra, nullProto]) => {
          const out: Record<string, unknown> = nullProto ? Object.create(null) : {};
          for (const [k, v] of Object.entries(r)) if (!drop.includes(k)) out[k] = v;
          for (const [k, v] of Object.entries(extra))
            Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
          return out;
        }),
    );

  it("whatever plainEnvelope accepts, EnvelopeSchema accepts (and gives the same fields)", async (t) => {
    await runProperty(
      t,
      fc.oneof(near, plain),
      (value) => {
        const fast = plainEnvelope(value);
        if (fast === undefined) return;
        const schema = EnvelopeSchema.safeParse(value);
        assert.ok(schema.success, `the fast path accepted what the schema refuses: ${JSON.stringify(schema.error?.issues)}`);
        assert.deepEqual({ ...schema.data }, { ...fast });
      },
      { runs: 2000, seconds: 1 },
    );
  });

  it("a plainly valid envelope is accepted by both", async (t) => {
    await runProperty(
      t,
      plain,
      (value) => {
        assert.notEqual(plainEnvelope(value), undefined);
        assert.ok(EnvelopeSchema.safeParse(value).success);
      },
      { runs: 1000, seconds: 1 },
    );
  });
});
