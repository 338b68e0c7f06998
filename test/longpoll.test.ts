import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { runCli } from "../src/cli/run.js";
import { serveHttp } from "../src/http.js";
import {
  demoTools,
  httpTransport,
  type JsonObject,
  MemoryJobStore,
  type ServerOptions,
  type SmcpClient,
  type SmcpServer,
} from "../src/index.js";
import { parseLossless } from "../src/protocol/parse.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { runProperty } from "./fuzz/run.js";
import {
  CLIENT_SECRET,
  OTHER_CLIENT_ID,
  OTHER_CLIENT_SECRET,
  PEER,
  pair,
  SERVER_ID,
  SERVER_SECRET,
  signedEnvelope,
  until,
} from "./helpers.js";
import {
  countedClient,
  countingStore,
  Gates,
  longPollTools,
  rawEnvelope,
  rawPollEnvelope,
  type SentRequest,
} from "./longpoll-helpers.js";

const gates = new Gates();
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
});
const unique = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

function setup(options: Partial<ServerOptions> = {}) {
  const made = pair({ tools: [...demoTools, ...longPollTools(gates)], ...options });
  closers.push(() => made.server.close());
  return made;
}

async function start(client: SmcpClient, tool: string, args: JsonObject): Promise<string> {
  return ((await client.call(tool, args)) as { job_id: string }).job_id;
}

/** A poll_job with wait_ms through `handle`, for the HTTP status and the raw answer. */
function heldPollEnvelope(jobId: string, waitMs = 20_000, version = 1): string {
  return signedEnvelope({ tool: "poll_job", args: { job_id: jobId, wait_ms: waitMs, version } });
}

describe("held polls cost no busy work (memory)", () => {
  it("a poll held 50 ms and one held 500 ms make the same store calls: two reads and one watch", async () => {
    const counted = countingStore(new MemoryJobStore());
    const { client } = setup({ jobStore: counted.store });
    const gate = unique("idle");
    const jobId = await start(client, "quiet", { name: gate });
    await until(() => gates.started.has(gate), 10_000, "the job to start");
    const heldFor = async (waitMs: number) => {
      counted.calls.clear();
      await client.poll(jobId, { waitMs, version: 1 });
      return Object.fromEntries(counted.calls);
    };
    const short = await heldFor(50);
    const long = await heldFor(500);
    assert.deepEqual(short, { get: 2, watch: 1 });
    assert.deepEqual(long, short);
    gates.open(gate);
  });
});

describe("caps on held polls: per client and per process", () => {
  it("past either cap a poll with wait_ms is rate_limited (429, retry_after_ms) and holds nothing; slots come back", async () => {
    const { client, other, server } = setup({ longPoll: { perClient: 2, perProcess: 3 } });
    const mine = unique("mine");
    const theirs = unique("theirs");
    const myJob = await start(client, "quiet", { name: mine });
    const theirJob = await start(other, "quiet", { name: theirs });
    const held = [client.poll(myJob, { waitMs: 20_000, version: 1 }), client.poll(myJob, { waitMs: 20_000, version: 1 })];
    await until(() => server.heldPolls === 2, 10_000, "two held polls");

    const refused = async (body: string, reason: string) => {
      const answer = await server.handle(body);
      assert.equal(answer.httpStatus, 429, reason);
      assert.equal(answer.response.result?.code, "rate_limited");
      const details = answer.response.result?.details as { reason?: string; retry_after_ms?: unknown };
      assert.equal(details.reason, "long_polls");
      assert.ok(Number.isInteger(details.retry_after_ms) && (details.retry_after_ms as number) > 0);
    };
    await refused(heldPollEnvelope(myJob), "the client's third");
    assert.equal(server.heldPolls, 2);
    // Without wait_ms, a poll is never refused for the cap.
    assert.equal((await client.poll(myJob)).result?.state, "running");

    held.push(other.poll(theirJob, { waitMs: 20_000, version: 1 }));
    await until(() => server.heldPolls === 3, 10_000, "the other client's held poll");
    const otherSigned = signedEnvelope(
      { client_id: OTHER_CLIENT_ID, tool: "poll_job", args: { job_id: theirJob, wait_ms: 20_000, version: 1 } },
      OTHER_CLIENT_SECRET,
    );
    await refused(otherSigned, "the process's fourth, though that client holds one");
    assert.equal(server.heldPolls, 3);

    gates.open(mine);
    gates.open(theirs);
    for (const answer of await Promise.all(held)) assert.equal(answer.status, "done");
    assert.equal(server.heldPolls, 0);
    const again = unique("again");
    const next = await start(client, "quiet", { name: again });
    const answers = [client.poll(next, { waitMs: 20_000, version: 1 }), client.poll(next, { waitMs: 20_000, version: 1 })];
    await until(() => server.heldPolls === 2, 10_000, "slots given back");
    gates.open(again);
    for (const answer of await Promise.all(answers)) assert.equal(answer.status, "done");
  });

  it("another client's job is unknown_job at once, never held", async () => {
    const { client, other, server } = setup();
    const gate = unique("private");
    const jobId = await start(client, "quiet", { name: gate });
    const answer = await other.poll(jobId, { waitMs: 30_000, version: 1 });
    assert.equal(answer.result?.code, "unknown_job");
    assert.equal(server.heldPolls, 0);
    gates.open(gate);
  });

  it("more held polls than an EventTarget's default listener limit print no leak warning", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const { client, server } = setup();
      const gate = unique("many");
      const jobId = await start(client, "quiet", { name: gate });
      const held = Array.from({ length: 20 }, () => client.poll(jobId, { waitMs: 20_000, version: 1 }));
      await until(() => server.heldPolls === 20, 10_000, "twenty held polls");
      gates.open(gate);
      await Promise.all(held);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        warnings.filter((name) => name === "MaxListenersExceededWarning"),
        [],
      );
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("shutdown answers held polls at once with the job as it is", () => {
  it("server.close()", { timeout: 15_000 }, async () => {
    const { client, server } = setup();
    const gate = unique("closing");
    const jobId = await start(client, "quiet", { name: gate });
    await until(() => gates.started.has(gate), 10_000, "the job to start");
    const held = server.handle(heldPollEnvelope(jobId, 30_000));
    await until(() => server.heldPolls === 1, 10_000, "the poll to be held");
    const closing = server.close();
    const answer = await held;
    assert.equal(answer.httpStatus, 200);
    assert.equal(answer.response.status, "running");
    assert.deepEqual(answer.response.result, { job_id: jobId, state: "running", progress: null, version: 1 });
    await closing;
    gates.open(gate);
  });

  it("a poll that arrives while the server drains is answered at once", { timeout: 15_000 }, async () => {
    const { client, server } = setup();
    const gate = unique("drained");
    const jobId = await start(client, "quiet", { name: gate });
    server.drain();
    const answer = await client.poll(jobId, { waitMs: 30_000, version: 1 });
    assert.equal(answer.status, "running");
    assert.equal(server.heldPolls, 0);
    gates.open(gate);
  });

  it("serveHttp's close(): the held poll's answer goes out before the connection closes", { timeout: 15_000 }, async () => {
    const { server } = setup();
    const running = await serveHttp(server, { port: 0, shutdownGraceMs: 60_000 });
    const { client } = countedClient(server, httpTransport(running.url));
    const gate = unique("http-closing");
    const jobId = await start(client, "quiet", { name: gate });
    const held = client.poll(jobId, { waitMs: 30_000, version: 1 });
    await until(() => server.heldPolls === 1, 10_000, "the poll to be held");
    await running.close(); // had the poll not been answered, this would wait out the 60 s grace
    const answer = await held;
    assert.equal(answer.status, "running");
    assert.equal(answer.result?.version, 1);
    gates.open(gate);
  });
});

describe("poll_job wait_ms and version: hostile values", () => {
  const BAD_WAIT = ["-1", "30001", "99999999999999999999999", "1000.0", "1e3", "0.5", "-0.0", '"5"', "null", "true", "[]", "{}"];
  const BAD_VERSION = ["0", "-1", "1.0", "1.5", "9007199254740992", '"1"', "null", "false", "[1]"];

  it("each is bad_args at once (400, the field named, nothing held, no value or stack echoed)", async () => {
    const { client, server } = setup();
    const gate = unique("hostile");
    const jobId = await start(client, "quiet", { name: gate });
    const cases = [
      ...BAD_WAIT.map((text) => ({ text, field: "wait_ms", args: `{"job_id":"${jobId}","wait_ms":${text},"version":1}` })),
      ...BAD_VERSION.map((text) => ({ text, field: "version", args: `{"job_id":"${jobId}","version":${text},"wait_ms":20000}` })),
    ];
    for (const { text, field, args } of cases) {
      const answer = await server.handle(rawPollEnvelope(args));
      assert.equal(answer.httpStatus, 400, `${field}: ${text}`);
      assert.equal(answer.response.result?.code, "bad_args", `${field}: ${text}`);
      const issues = (answer.response.result?.details as { issues: { path: unknown[] }[] } | undefined)?.issues ?? [];
      assert.deepEqual(
        issues.map((issue) => issue.path),
        [[field]],
        `${field}: ${text}`,
      );
      assert.ok(!answer.body.includes("    at "), "no stack");
      // Only what the server wrote can echo: the signature and the copied request_id are hex and may hold "1e3" by chance.
      const written = JSON.stringify([answer.response.error, answer.response.result]);
      if (/\d{5}|\.|\de|"/.test(text)) assert.ok(!written.includes(text), `${field}: ${text} echoed`);
      assert.equal(server.heldPolls, 0);
    }
    // 1E400 overflows to infinity: not JSON at all (SPEC §2), refused before the arguments are read.
    const overflow = await server.handle(
      signedEnvelope({ tool: "poll_job", args: { job_id: jobId, wait_ms: 1 } }).replace('"wait_ms":1', '"wait_ms":1E400'),
    );
    assert.equal(overflow.response.result?.code, "bad_envelope");
    gates.open(gate);
  });

  it("the rule is every tool's: an argument typed integer refuses a float lexeme; a number argument takes it", async () => {
    const { server } = setup();
    const seconds = await server.handle(rawEnvelope("start_long_task", '{"seconds":2.0,"payload":{}}'));
    assert.equal(seconds.response.result?.code, "bad_args");
    assert.deepEqual((seconds.response.result?.details as { issues: unknown[] } | undefined)?.issues, [
      { path: ["seconds"], code: "invalid_type", message: "seconds: expected integer, got float" },
    ]);
    assert.equal(server.jobStore instanceof MemoryJobStore && (await server.jobStore.list()).length, 0, "nothing stored");
    const limit = await server.handle(rawEnvelope("list_jobs", '{"limit":5.0}'));
    assert.equal(limit.response.result?.code, "bad_args");
    // batch_sum's numbers are numbers, not integers: 1.0 is as good as 1; a nested float is not an argument's lexeme.
    const sum = await server.handle(rawEnvelope("batch_sum", '{"numbers":[1.0,2]}'));
    assert.deepEqual(sum.response.result, { count: 2, total: 3 });
  });

  it("the parser reports float lexemes among the members of args only", () => {
    const parsed = parseLossless('{"args":{"a":1.0,"b":1,"c":{"d":2.0},"e":[3.0],"f":1e2},"g":{"h":4.0},"i":5.0}');
    assert.deepEqual(parsed.floatArgs, ["a", "f"]);
    assert.deepEqual(parsed.floatKeys, ["i"]);
    assert.equal(parseLossless('{"args":{"a":1}}').floatArgs, undefined);
  });

  it("random wait_ms and version lexemes: bad_args exactly when not an integer in range, else the job's answer", async (t) => {
    const { client, server } = setup();
    // A finished job: every valid wait answers at once, so a case never waits.
    const jobId = await start(client, "instant", {});
    await until(async () => (await client.poll(jobId)).status === "done", 10_000, "the job to end");
    const integer = fc.oneof(
      fc.integer({ min: -5, max: 30_005 }),
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
      fc.constantFrom(0, 1, 30_000, 30_001, 2 ** 53 - 1, 2 ** 53),
    );
    const lexeme = fc.oneof(
      integer.map((n) => ({ text: String(n), int: BigInt(n) as bigint | undefined })),
      fc
        .double({ noNaN: true, noDefaultInfinity: true })
        .map((x) => ({ text: /[.e]/.test(String(x)) ? String(x) : `${x}.0`, int: undefined })),
      integer.map((n) => ({ text: `${n}e0`, int: undefined })),
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((v) => typeof v !== "number")
        .map((v) => ({ text: JSON.stringify(v), int: undefined })),
    );
    const field = fc.option(lexeme, { nil: undefined });
    await runProperty(
      t,
      fc.record({ wait: field, version: field }),
      async ({ wait, version }) => {
        const members = [`"job_id":"${jobId}"`];
        if (wait) members.push(`"wait_ms":${wait.text}`);
        if (version) members.push(`"version":${version.text}`);
        const answer = await server.handle(rawPollEnvelope(`{${members.join(",")}}`));
        const waitOk = !wait || (wait.int !== undefined && wait.int >= 0n && wait.int <= 30_000n);
        const versionOk = !version || (version.int !== undefined && version.int >= 1n && version.int <= 2n ** 53n - 1n);
        if (waitOk && versionOk) {
          assert.equal(answer.response.status, "done", fc.stringify({ wait, version }));
        } else {
          assert.equal(answer.response.result?.code, "bad_args", fc.stringify({ wait, version }));
          const details = answer.response.result?.details as { issues: { path: string[] }[] } | undefined;
          const paths = (details?.issues ?? []).map((i) => i.path[0]);
          const expected = [...(waitOk ? [] : ["wait_ms"]), ...(versionOk ? [] : ["version"])];
          assert.deepEqual([...paths].sort(), expected.sort(), fc.stringify({ wait, version }));
        }
        assert.equal(server.heldPolls, 0);
      },
      { runs: 400, seconds: 8 },
    );
  });
});

describe("a client and the CLI against servers with and without long_poll", () => {
  it("a client does not spin against a server that answers held polls at once (draining)", async () => {
    const { server } = setup();
    server.drain();
    const { client, sent } = countedClient(server);
    const gate = unique("spin");
    const waiting = client.callAndWait("quiet", { name: gate }, { pollIntervalMs: 40, maxPollIntervalMs: 40 });
    const polls = () => sent.filter((r) => r.tool === "poll_job");
    await until(() => polls().length >= 4, 10_000, "four polls");
    gates.open(gate);
    await waiting;
    const [, second, , fourth] = polls();
    // Each answer had nothing new and came at once: the client paused before asking again.
    assert.ok((fourth?.at ?? 0) - (second?.at ?? 0) >= 75, JSON.stringify(polls()));
  });

  describe("the seed's Python server (no long_poll)", () => {
    let peer: ChildProcess;
    let url = "";
    before(async () => {
      peer = spawn(
        "python3",
        [PEER, "serve", JSON.stringify({ server_id: SERVER_ID, server_secret: SERVER_SECRET, client_secret: CLIENT_SECRET })],
        { stdio: ["pipe", "pipe", "inherit"] },
      );
      const [line] = (await once(createInterface({ input: peer.stdout as NodeJS.ReadableStream }), "line")) as [string];
      url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/mcp`;
    });
    after(async () => {
      peer.stdin?.end();
      if (peer.exitCode === null) await once(peer, "exit");
    });

    it("callAndWait polls it with backoff, never sending wait_ms (which it would refuse)", async () => {
      const { server } = setup();
      const { client, sent } = countedClient(server, httpTransport(url));
      const result = await client.callAndWait(
        "start_long_task",
        { seconds: 1, payload: { from: "seed" } },
        { pollIntervalMs: 50 },
      );
      assert.deepEqual(result, { from: "seed" });
      assert.deepEqual(
        sent.slice(0, 2).map((r) => r.tool),
        ["start_long_task", "server_identity"],
      );
      const polls = sent.filter((r) => r.tool === "poll_job");
      assert.ok(polls.length >= 2);
      assert.ok(polls.every((r) => !("wait_ms" in r.args) && !("version" in r.args)));
    });
  });

  describe("smcp call --wait and smcp wait JOB_ID", () => {
    const record = (server: SmcpServer): SentRequest[] => {
      const seen: SentRequest[] = [];
      const handle = server.handle.bind(server);
      server.handle = (input) => {
        const message = parseLossless(input).value as unknown as SentRequest;
        seen.push({ tool: message.tool, args: message.args });
        return handle(input);
      };
      return seen;
    };

    it("call --wait: start, the capability, one long poll from version 1", async () => {
      const { server } = setup();
      const seen = record(server);
      const running = await serveHttp(server, { port: 0 });
      closers.push(() => running.close());
      const gate = unique("cli-call");
      const io = captureIO();
      const exit = runCli(["call", "quiet", JSON.stringify({ name: gate }), "--wait", ...connectionFlags(running.url)], io);
      await until(() => server.heldPolls === 1, 10_000, "the CLI's poll to be held");
      gates.open(gate);
      assert.equal(await exit, 0, io.errText());
      assert.match(io.outText(), new RegExp(gate));
      assert.deepEqual(
        seen.map((r) => r.tool),
        ["quiet", "server_identity", "poll_job"],
      );
      assert.equal(seen[2]?.args.version, 1);
      assert.equal(typeof seen[2]?.args.wait_ms, "number");
    });

    it("wait JOB_ID: the capability, a poll for the job's version, then long polls", async () => {
      const { server, client } = setup();
      const seen = record(server);
      const running = await serveHttp(server, { port: 0 });
      closers.push(() => running.close());
      const gate = unique("cli-wait");
      const jobId = await start(client, "quiet", { name: gate });
      seen.length = 0;
      const io = captureIO();
      const exit = runCli(["wait", jobId, ...connectionFlags(running.url)], io);
      await until(() => server.heldPolls === 1, 10_000, "the CLI's poll to be held");
      gates.open(gate);
      assert.equal(await exit, 0, io.errText());
      assert.deepEqual(
        seen.map((r) => r.tool),
        ["server_identity", "poll_job", "poll_job"],
      );
      assert.equal(seen[1]?.args.wait_ms, undefined);
      assert.equal(seen[2]?.args.version, 1);
      assert.equal(typeof seen[2]?.args.wait_ms, "number");
    });
  });
});
