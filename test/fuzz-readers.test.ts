/**
 * Generative tests of the loops that read bytes from outside besides the
 * parser (issue #8): `readLimited` (src/util/stream.ts, the fetch adapter's
 * and the client's body reader), the fetch handler around it, and the node
 * adapter's body reader (src/server/http-node.ts) under bodies split at
 * random points, with random delays, lying Content-Length, chunked
 * encoding, aborts and half-closes. Each must end, within its deadline,
 * with the answer SPEC §5/§6 prescribes, and the server must keep answering
 * (no request slot leaked).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { claimReply } from "../src/backends/redis/jobs.js";
import { reserveAnswers } from "../src/backends/redis/nonces.js";
import { createFetchHandler, createServer, demoTools } from "../src/index.js";
import { readLimited } from "../src/util/stream.js";
import { requestCase } from "./fuzz/envelopes.js";
import { anyDocument, envelopeText, FIXED_NOW } from "./fuzz/json.js";
import { postHead, RawConnection } from "./fuzz/raw-http.js";
import { runProperty } from "./fuzz/run.js";
import { Sandbox } from "./fuzz/sandbox.js";
import { checkAnswer } from "./fuzz/wire.js";
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

type Ending = "end" | "error" | "hang";

/** A web stream of `chunks` that then ends, errors or never ends; records whether it was cancelled. */
function streamOf(chunks: Uint8Array[], ending: Ending, yieldBetween: boolean) {
  let i = 0;
  // `ended`: the source already closed or errored (a later cancel then never reaches it, by the streams spec;
  // Node 24 pulls ahead and gets there first, Node 20 did not): either way nothing is left open.
  const state = { cancelled: false, ended: false };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (yieldBetween) await new Promise((resolve) => setImmediate(resolve));
      const chunk = chunks[i++];
      if (chunk !== undefined) return controller.enqueue(chunk);
      if (ending === "end") {
        state.ended = true;
        controller.close();
      } else if (ending === "error") {
        state.ended = true;
        controller.error(new Error("the peer went away"));
      } else await new Promise(() => undefined); // never ends
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

/** Races `promise` against a deadline: a hang is a failure, not a frozen test. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms: a hang`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const chunkSizes = fc.array(fc.nat({ max: 400 }), { maxLength: 12 });

describe("readLimited: generative (issue #8)", () => {
  it("ends with the bytes, too_large (cancelled), timeout (cancelled) or the stream's error; never hangs", async (t) => {
    await runProperty(
      t,
      fc.record({
        sizes: chunkSizes,
        ending: fc.constantFrom<Ending>("end", "error", "hang"),
        maxBytes: fc.nat({ max: 3000 }),
        timeoutMs: fc.option(fc.integer({ min: 10, max: 400 }), { nil: undefined }),
        yieldBetween: fc.boolean(),
      }),
      async ({ sizes, ending, maxBytes, timeoutMs, yieldBetween }) => {
        // Without a timeout only a stream that ends is given (the client relies on fetch's signal instead).
        const end: Ending = timeoutMs === undefined && ending === "hang" ? "end" : ending;
        // A stream that never ends waits out the whole deadline: keep those short.
        const deadline = end === "hang" && timeoutMs !== undefined ? 10 + (timeoutMs % 50) : timeoutMs;
        const chunks = sizes.map((n, i) => new Uint8Array(n).fill(i & 0xff));
        const { stream, state } = streamOf(chunks, end, yieldBetween);
        const outcome = await within(
          readLimited(stream, maxBytes, deadline).then(
            (value) => ({ value }),
            (error: Error) => ({ error }),
          ),
          (deadline ?? 0) + 5_000,
          "readLimited",
        );
        const totals = sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0));
        const overflows = totals.some((total) => total > maxBytes);
        // With a deadline, a loaded machine may reach it first whatever the stream does: then the
        // answer is "timeout" with the stream cancelled; otherwise it is the stream's own outcome.
        if (deadline !== undefined && "value" in outcome && outcome.value === "timeout") {
          assert.ok(state.cancelled, "the stream was not cancelled");
          return;
        }
        if (overflows) {
          assert.deepEqual(outcome, { value: "too_large" });
          assert.ok(state.cancelled || state.ended, "the stream was left open");
        } else if (end === "end") {
          assert.ok("value" in outcome && outcome.value instanceof Uint8Array);
          assert.deepEqual(Buffer.from(outcome.value), Buffer.concat(chunks));
        } else if (end === "error") {
          assert.ok("error" in outcome && outcome.error.message === "the peer went away", JSON.stringify(outcome));
        } else {
          assert.deepEqual(outcome, { value: "timeout" });
          assert.ok(state.cancelled, "the stream was not cancelled");
        }
      },
      { runs: 300, seconds: 2 },
    );
  });
});

const keyring = {
  serverId: SERVER_ID,
  serverSecrets: SERVER_SECRET,
  clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET },
};

describe("fetch handler body reading: generative (issue #8)", () => {
  const server = createServer({ keyring, tools: demoTools, now: () => FIXED_NOW, runJobs: false });
  after(() => server.close());

  it("a body in random chunks that ends, errors, stalls or overflows gets a signed answer with the SPEC §6 status", async (t) => {
    await runProperty(
      t,
      fc.record({
        text: fc.oneof(envelopeText, anyDocument),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
        ending: fc.constantFrom<Ending>("end", "end", "error", "hang"),
        maxBodyBytes: fc.integer({ min: 50, max: 3000 }),
        declared: fc.constantFrom("none", "exact", "more", "less"),
        yieldBetween: fc.boolean(),
      }),
      async ({ text, cuts, ending, maxBodyBytes, declared, yieldBetween }) => {
        const bytes = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [...points, bytes.length].map((end, i, all) => bytes.subarray(i === 0 ? 0 : (all[i - 1] as number), end));
        const { stream } = streamOf(chunks, ending, yieldBetween);
        const headers: Record<string, string> = { "content-type": "application/json" };
        const length = { none: undefined, exact: bytes.length, more: bytes.length + 100, less: Math.max(0, bytes.length - 1) }[
          declared
        ];
        if (length !== undefined) headers["content-length"] = String(length);
        // Only a stalled body should meet the deadline: others get far more time than they need.
        const handle = createFetchHandler(server, { maxBodyBytes, bodyTimeoutMs: ending === "hang" ? 50 : 3_000 });
        const request = new Request("http://localhost/mcp", {
          method: "POST",
          headers,
          body: stream,
          duplex: "half",
        } as RequestInit);
        const response = await within(handle(request), 5_000, "the fetch handler");
        const body = new Uint8Array(await response.arrayBuffer());
        const checked = checkAnswer({ body, httpStatus: response.status }, { markers: [] });
        if (length !== undefined && length > maxBodyBytes) assert.equal(checked.code, "too_large", "declared over the cap");
        else if (bytes.length > maxBodyBytes) assert.equal(checked.code, "too_large", "streamed over the cap");
        else if (ending === "hang") assert.equal(checked.code, "bad_envelope", "a stalled body");
        else if (ending === "error") assert.equal(checked.code, "bad_envelope", "a body that failed to arrive");
      },
      { runs: 300, seconds: 2 },
    );
  });
});

describe("node body reader: generative (issue #8)", () => {
  const sandbox = new Sandbox(new URL("./fuzz/targets/server.ts", import.meta.url));
  let origin = "";
  const MAX_IN_FLIGHT = 4;
  const BODY_TIMEOUT_MS = 300;
  before(async () => {
    const url = await sandbox.call<string>("serve", { maxInFlight: MAX_IN_FLIGHT, bodyTimeoutMs: BODY_TIMEOUT_MS }, 15_000);
    origin = new URL(url).origin;
  });
  after(() => sandbox.close());

  /** The server still answers a normal request (and has not leaked request slots: it would say `unavailable`). */
  async function stillAnswers(): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const response = await fetch(`${origin}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
        signal: AbortSignal.timeout(5_000),
      });
      const checked = checkAnswer(
        { body: new Uint8Array(await response.arrayBuffer()), httpStatus: response.status },
        { markers: [] },
      );
      if (checked.code === "bad_envelope") return;
      // Slots of aborted requests are freed when node reports their sockets closed: wait for that, not longer.
      assert.equal(checked.code, "unavailable");
      assert.ok(Date.now() < deadline, "request slots leaked: the server stays at capacity");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("bodies split at random points, with delays, lying lengths, chunked, aborted or half-closed: a signed answer or a clean close", async (t) => {
    await runProperty(
      t,
      fc.record({
        text: fc.oneof(
          requestCase.map((c) => c.body),
          anyDocument,
        ),
        framing: fc.constantFrom("length", "chunked", "more", "less"),
        cuts: fc.array(fc.nat(), { maxLength: 4 }),
        delays: fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 4 }),
        ending: fc.constantFrom("complete", "complete", "abort", "halfclose"),
      }),
      async ({ text, framing, cuts, delays, ending }) => {
        const body = Buffer.from(text);
        const connection = new RawConnection(origin);
        try {
          await connection.opened;
          const declared = framing === "more" ? body.length + 5 : framing === "less" ? Math.max(0, body.length - 3) : body.length;
          const head =
            framing === "chunked"
              ? postHead("/mcp", { "transfer-encoding": "chunked" })
              : postHead("/mcp", { "content-length": declared });
          let wire: Buffer;
          if (framing === "chunked") {
            const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
            const pieces = [...points, body.length].map((end, i, all) =>
              body.subarray(i === 0 ? 0 : (all[i - 1] as number), end),
            );
            wire = Buffer.concat([
              ...pieces
                .filter((p) => p.length > 0)
                .map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from("\r\n")])),
              Buffer.from("0\r\n\r\n"),
            ]);
          } else wire = body;
          const all = Buffer.concat([Buffer.from(head, "latin1"), wire]);
          const stop = ending === "complete" ? all.length : Math.floor(all.length * 0.6);
          const points = [...new Set(cuts.map((c) => c % (stop + 1)))].sort((a, b) => a - b);
          let at = 0;
          for (const [i, point] of [...points, stop].entries()) {
            await connection.write(all.subarray(at, point));
            at = point;
            const pause = delays[i] ?? 0;
            if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
          }
          if (ending === "abort") {
            connection.close();
          } else if (ending === "halfclose") {
            connection.socket.end();
            // Whatever comes back before the server closes must be well-formed.
            await connection.until(
              (_data, closed) => (closed ? true : undefined),
              BODY_TIMEOUT_MS + 5_000,
              "close after half-close",
            );
            const first = await connection.response(0, 1).catch(() => undefined);
            if (first?.headers.get("content-type")?.startsWith("application/json")) {
              checkAnswer({ body: first.body, httpStatus: first.status }, { markers: [] });
            }
          } else {
            const first = await connection.response(0, BODY_TIMEOUT_MS + 5_000);
            const checked = checkAnswer({ body: first.body, httpStatus: first.status }, { markers: [] });
            if (framing === "more")
              assert.equal(checked.code, "bad_envelope", "a body shorter than its Content-Length times out");
          }
        } finally {
          connection.close();
        }
        await stillAnswers();
      },
      { runs: 60, seconds: 3 },
    );
  });
});

describe("the Redis replay cache's script reply: generative (round 3, session 9)", () => {
  // Redis's answer to `reserve.lua` is outside input: a reservation is fresh only where the reply is an
  // array of exactly one entry per reservation and that entry is the integer 1 (0: held; anything else
  // fails it closed). Random replies, and valid ones mutated (an entry changed, dropped or added).
  const entry = fc.oneof(
    fc.constantFrom<unknown>(1, 0, -1, 2, 1.5, "1", "0", "OOM command not allowed", "", null, true, false),
    fc.anything(),
  );
  const valid = fc.array(fc.constantFrom(0, 1), { maxLength: 40 });
  const mutated = valid.chain((reply) =>
    fc.record({
      reply: fc.oneof(
        fc.constant(reply),
        fc.tuple(fc.nat(), entry).map(([at, value]) => reply.map((x, i) => (i === at % Math.max(1, reply.length) ? value : x))),
        fc.nat().map((at) => reply.filter((_, i) => i !== at % Math.max(1, reply.length))),
        entry.map((value) => [...reply, value]),
      ),
      count: fc.constant(reply.length),
    }),
  );
  const random = fc.record({
    reply: fc.oneof(fc.array(entry, { maxLength: 40 }), fc.anything()),
    count: fc.nat({ max: 40 }),
  });

  it("believes exactly the entries that are the integer 1, of a reply of the right length, and answers every reservation", async (t) => {
    await runProperty(
      t,
      fc.oneof(mutated, random),
      ({ reply, count }) => {
        const answers = reserveAnswers(reply, count);
        assert.equal(answers.length, count);
        const shaped = Array.isArray(reply) && reply.length === count;
        answers.forEach((answer, i) => {
          const value: unknown = shaped ? (reply as unknown[])[i] : undefined;
          if (shaped && value === 1) assert.equal(answer, true);
          else if (shaped && value === 0) assert.equal(answer, false);
          else {
            assert.ok(answer instanceof Error, `entry ${i} of ${JSON.stringify(reply)} must fail closed`);
            if (shaped && typeof value === "string") assert.equal(answer.message, value);
          }
        });
      },
      { runs: 2000, seconds: 3 },
    );
  });
});

describe("the Redis claim script's reply (lua/claim.lua): read by claimReply", () => {
  // A reply is {dropped, HGETALL of each started job, ...}. Valid replies, then cut short, with an entry changed
  // or added, and random ones: the reader always ends, hands out at most the jobs asked for, only well-formed
  // ones, in order, and a count that is not a non-negative integer reads as 0.
  const jobFlat = fc
    .record({ id: fc.uuid(), state: fc.constantFrom("running", "queued"), tool: fc.constantFrom("t", "u") })
    .map(({ id, state, tool }) => ["id", id, "state", state, "tool", tool, "args", "{}", "created_at", "1", "updated_at", "1"]);
  const valid = fc
    .record({ dropped: fc.nat({ max: 50 }), jobs: fc.array(jobFlat, { maxLength: 8 }) })
    .map(({ dropped, jobs }) => [dropped, ...jobs]);
  const entry = fc.oneof(fc.constantFrom<unknown>(null, -1, 1.5, "1", "", [], ["id"], ["id", "x", "args", "{"]), fc.anything());
  const reply = fc.oneof(
    valid,
    valid.chain((r) => fc.nat().map((n) => r.slice(0, n % (r.length + 1)))),
    valid.chain((r) => fc.tuple(fc.nat(), entry).map(([at, value]) => r.map((x, i) => (i === at % r.length ? value : x)))),
    valid.chain((r) => entry.map((value) => [...r, value])),
    fc.anything(),
  );

  it("ends, hands out at most `want` well-formed jobs in order, and never a count below 0", async (t) => {
    await runProperty(
      t,
      fc.record({ reply, want: fc.nat({ max: 10 }) }),
      ({ reply, want }) => {
        const { jobs, dropped } = claimReply(reply, want);
        assert.ok(jobs.length <= want);
        assert.ok(Number.isSafeInteger(dropped) && dropped >= 0);
        if (!Array.isArray(reply)) return assert.deepEqual({ jobs, dropped }, { jobs: [], dropped: 0 });
        // Every job handed out is one of the reply's entries, in the reply's order.
        const ids = (reply as unknown[]).slice(1).map((flat) => (Array.isArray(flat) ? flat[flat.indexOf("id") + 1] : undefined));
        let at = 0;
        for (const job of jobs) {
          assert.equal(typeof job.id, "string");
          at = ids.indexOf(job.id, at) + 1;
          assert.ok(at > 0, `${job.id} is not in the reply, or out of order`);
        }
        if (typeof reply[0] === "number" && Number.isSafeInteger(reply[0]) && reply[0] >= 0) assert.equal(dropped, reply[0]);
      },
      { runs: 2000, seconds: 3 },
    );
  });
});
