import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { demoTools, type JsonObject, MemoryJobStore, type ServerOptions, type SmcpClient } from "../../src/index.js";
import { pair, until } from "../helpers.js";
import { countedClient, countingStore, Gates, longPollTools } from "../longpoll-helpers.js";

const unique = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

/** Long polls (SPEC §8) through a whole server, the same on every store setup. */
export function longPollConformance(name: string, options: () => Promise<Partial<ServerOptions>>): void {
  describe(`long poll: ${name}`, () => {
    const gates = new Gates();
    const closers: (() => Promise<void>)[] = [];
    after(async () => {
      for (const close of closers) await close();
    });
    const setup = async (extra: Partial<ServerOptions> = {}) => {
      const base = await options();
      const counted = countingStore(base.jobStore ?? new MemoryJobStore());
      const made = pair({ tools: [...demoTools, ...longPollTools(gates)], ...base, jobStore: counted.store, ...extra });
      closers.push(() => made.server.close());
      return { ...made, calls: counted.calls };
    };
    const start = async (client: SmcpClient, tool: string, args: JsonObject) =>
      ((await client.call(tool, args)) as { job_id: string }).job_id;

    it("a held poll answers when the job reports progress and when it ends, not when a worker starts it", async () => {
      const { client, server } = await setup({ jobConcurrency: 1 });
      // The only worker slot is busy, so the job is queued while the poll is held, and starts during it.
      const blocker = unique("blocker");
      await start(client, "stepper", { name: blocker });
      await until(() => gates.started.has(blocker), 20_000, "the blocker to start");
      const target = unique("target");
      const jobId = await start(client, "stepper", { name: target });
      assert.equal((await client.poll(jobId)).result?.state, "queued");
      const held = client.poll(jobId, { waitMs: 20_000, version: 1 });
      await until(() => server.heldPolls === 1, 10_000, "the poll to be held");
      gates.open(`${blocker}:progress`);
      gates.open(`${blocker}:end`);
      await until(() => gates.started.has(target), 20_000, "a worker to start the job");
      gates.open(`${target}:progress`);
      // Had the start answered it, it would read version 1 with no progress.
      const atProgress = await held;
      assert.equal(atProgress.status, "running");
      assert.deepEqual(atProgress.result, { job_id: jobId, state: "running", progress: { step: 1 }, version: 2 });

      const atEnd = client.poll(jobId, { waitMs: 20_000, version: 2 });
      await until(() => server.heldPolls === 1, 10_000, "the second poll to be held");
      gates.open(`${target}:end`);
      const done = await atEnd;
      assert.equal(done.status, "done");
      assert.deepEqual(done.result, { name: target });
      assert.equal(server.heldPolls, 0);
    });

    it("a held poll answers at wait_ms when nothing changes, with the job as it is", async () => {
      const { client, server } = await setup();
      const gate = unique("quiet");
      const jobId = await start(client, "quiet", { name: gate });
      const began = Date.now();
      const answer = await client.poll(jobId, { waitMs: 300, version: 1 });
      assert.ok(Date.now() - began >= 290, `answered after ${Date.now() - began} ms`);
      assert.equal(answer.status, "running");
      assert.equal(answer.result?.version, 1);
      assert.equal(server.heldPolls, 0);
      gates.open(gate);
    });

    it("a poll whose version is not the job's answers at once, holding nothing", async () => {
      const { client, server, calls } = await setup();
      const name = unique("stale");
      const jobId = await start(client, "stepper", { name });
      gates.open(`${name}:progress`);
      await until(async () => (await client.poll(jobId)).result?.version === 2, 20_000, "progress");
      const watches = calls.get("watch") ?? 0;
      for (const version of [1, 3, 9_007_199_254_740_991]) {
        const answer = await client.poll(jobId, { waitMs: 30_000, version });
        assert.equal(answer.result?.version, 2);
      }
      // Without a version, the job's own is the one waited past: a finished job answers at once too.
      gates.open(`${name}:end`);
      await until(async () => (await client.poll(jobId)).status === "done", 20_000, "the end");
      assert.equal((await client.poll(jobId, { waitMs: 30_000 })).status, "done");
      assert.equal((await client.poll(jobId, { waitMs: 30_000, version: 3 })).status, "done");
      assert.equal(calls.get("watch") ?? 0, watches, "no poll waited");
      assert.equal(server.heldPolls, 0);
    });

    it("a cancel (another request) answers a held poll", async () => {
      const { client, server } = await setup();
      const gate = unique("cancelled");
      const jobId = await start(client, "quiet", { name: gate });
      const held = client.poll(jobId, { waitMs: 20_000, version: 1 });
      await until(() => server.heldPolls === 1, 10_000, "the poll to be held");
      await client.cancel(jobId);
      const answer = await held;
      assert.equal(answer.status, "error");
      assert.equal(answer.result?.code, "cancelled");
    });

    it("callAndWait: once the capability is known, start + one long poll for a job shorter than the wait", async () => {
      const { server } = await setup();
      const { client, sent } = countedClient(server);
      assert.equal(await client.supportsLongPoll(), true);
      assert.deepEqual(
        sent.map((r) => r.tool),
        ["server_identity"],
      );
      sent.length = 0;
      const instant = await client.callAndWait("instant", {});
      assert.equal(typeof instant.at, "number");
      assert.deepEqual(
        sent.map((r) => r.tool),
        ["instant", "poll_job"],
      );
      assert.equal(sent[1]?.args.version, 1);
      assert.equal(sent[1]?.args.wait_ms, 20_000);

      sent.length = 0;
      const gate = unique("waited");
      const waiting = client.callAndWait("quiet", { name: gate });
      await until(() => server.heldPolls === 1, 10_000, "the poll to be held");
      gates.open(gate);
      assert.deepEqual(await waiting, { name: gate });
      assert.deepEqual(
        sent.map((r) => r.tool),
        ["quiet", "poll_job"],
      );
    });

    it("callAndWait polls with backoff, without wait_ms, a server that does not advertise long_poll", async () => {
      const { server } = await setup({ capabilities: { long_poll: false } });
      const { client, sent } = countedClient(server);
      const gate = unique("backoff");
      const waiting = client.callAndWait("quiet", { name: gate }, { pollIntervalMs: 5 });
      await until(() => sent.filter((r) => r.tool === "poll_job").length >= 3, 10_000, "three polls");
      gates.open(gate);
      assert.deepEqual(await waiting, { name: gate });
      await client.callAndWait("instant", {}, { pollIntervalMs: 5 });
      const polls = sent.filter((r) => r.tool === "poll_job");
      assert.ok(
        polls.every((r) => !("wait_ms" in r.args) && !("version" in r.args)),
        JSON.stringify(polls),
      );
      assert.equal(sent.filter((r) => r.tool === "server_identity").length, 1, "the capability is asked once per client");
      assert.equal(server.heldPolls, 0);
    });
  });
}
