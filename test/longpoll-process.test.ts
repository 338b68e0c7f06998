// Long polls across processes (SPEC §8): a poll held by one `smcp serve`
// process wakes when a separate `smcp worker` process ends the job — Redis
// (pub/sub, two API replicas), PostgreSQL (LISTEN/NOTIFY, two API replicas)
// and SQLite (one file shared by the processes).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient, httpTransport, type SmcpClient } from "../src/index.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, until } from "./helpers.js";
import { Schemas, storeUrl } from "./postgres-helpers.js";
import { type Child, startCli } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const TOOLS = fileURLToPath(new URL("./longpoll-tools.ts", import.meta.url));
const KEYS = ["--server-id", SERVER_ID, "--server-secret", SERVER_SECRET, "--client", `${CLIENT_ID}=${CLIENT_SECRET}`];
const ENV = { SMCP_CONFIG: "/nonexistent/keyring.json" };
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
});

interface Replica {
  origin: string;
  client: SmcpClient;
}

async function serve(store: string): Promise<Replica> {
  const child = await startCli(
    ["serve", "--port", "0", "--store", store, "--no-worker", "--metrics", "--tools", TOOLS, "--log-level", "warn", ...KEYS],
    ENV,
  );
  children.push(child);
  const origin = child.line.replace(/^listening on /, "");
  const client = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport: httpTransport(`${origin}/mcp`),
  });
  return { origin, client };
}

async function worker(store: string): Promise<Child> {
  const child = await startCli(["worker", "--store", store, "--tools", TOOLS, "--log-level", "warn"], ENV);
  children.push(child);
  return child;
}

/** The replica's `smcp_long_polls_held` gauge. */
async function heldPolls(replica: Replica): Promise<number> {
  const text = await (await fetch(`${replica.origin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("smcp_long_polls_held "));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

/**
 * Starts a file_gate job on `starter`, holds a poll for it on `holder`, and
 * ends it from the worker process by creating the file. A wake that never
 * came would answer at the 25 s wait, after the test's own timeout.
 */
async function wakesAcrossProcesses(starter: Replica, holder: Replica): Promise<void> {
  const gate = join(mkdtempSync(join(tmpdir(), "smcp-gate-")), "open");
  const { job_id } = (await starter.client.call("file_gate", { path: gate })) as { job_id: string };
  await until(async () => (await holder.client.poll(job_id)).result?.state === "running", 15_000, "the worker to take the job");
  const held = holder.client.poll(job_id, { waitMs: 25_000, version: 1 });
  await until(async () => (await heldPolls(holder)) === 1, 10_000, "the poll to be held");
  writeFileSync(gate, "");
  const answer = await held;
  assert.equal(answer.status, "done");
  assert.deepEqual(answer.result, { opened: true });
  assert.equal(await heldPolls(holder), 0);
}

describe("a held poll wakes when another process ends the job", () => {
  it("Redis: started on replica A, held on replica B, ended by a worker process", { timeout: 20_000 }, async () => {
    const prefix = `smcp-test-${randomUUID().slice(0, 8)}:`;
    const store = `${REDIS_URL}?prefix=${prefix}`;
    try {
      const [a, b] = await Promise.all([serve(store), serve(store)]);
      await worker(store);
      await wakesAcrossProcesses(a, b);
    } finally {
      await deleteKeys(prefix);
    }
  });

  it("PostgreSQL: started on replica A, held on replica B, ended by a worker process", { timeout: 20_000 }, async () => {
    const schemas = new Schemas();
    const store = storeUrl(schemas.name());
    try {
      const [a, b] = await Promise.all([serve(store), serve(store)]);
      await worker(store);
      await wakesAcrossProcesses(a, b);
    } finally {
      for (const child of children) await child.stop("SIGKILL");
      await schemas.dropAll();
    }
  });

  it("SQLite: held by a serve process, ended by a worker process sharing the file", { timeout: 20_000 }, async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), "smcp-longpoll-")), "smcp.db")}`;
    const replica = await serve(store);
    const running = await worker(store);
    await wakesAcrossProcesses(replica, replica);
    // Idle again, the worker stays up (it once exited as soon as it had nothing to do).
    await wakesAcrossProcesses(replica, replica);
    assert.equal(running.process.exitCode, null, running.stderr());
  });
});
