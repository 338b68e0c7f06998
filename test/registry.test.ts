/**
 * The client registry (issue 20): one format checked against its JSON Schema,
 * disabled clients and expired keys refused as if absent, `jobs:all` over
 * other clients' jobs, removed clients' jobs cancelled, live reloads that
 * keep the old registry on a bad file. Random registries and random requests
 * agree with a small reference model, with the registry and the jobs kept in
 * memory, a SQLite file and Redis.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import {
  clientFromKeyring,
  compileRegistry,
  parseRegistry,
  type RegistryDocument,
  readRegistryFile,
} from "../src/auth/registry.js";
import { readStoredRegistry, updateStoredRegistry } from "../src/auth/store.js";
import { openStores } from "../src/backends/open.js";
import { openRegistryStorage } from "../src/backends/registry.js";
import { createClient, createServer, defineTool, inProcessTransport, SmcpError, type SmcpServer } from "../src/index.js";
import { followRegistry } from "../src/server/registry-follow.js";
import { runProperty } from "./fuzz/run.js";
import { SERVER_ID, SERVER_SECRET, until } from "./helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const servers: SmcpServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

const shape = { input: z.strictObject({}), output: z.strictObject({}) };
const TOOLS = [
  defineTool({ name: "echo", description: "echo", ...shape, handler: () => ({}) }),
  defineTool({ name: "weather.today", description: "weather", ...shape, handler: () => ({}) }),
  defineTool({
    kind: "job",
    name: "report",
    description: "a job that waits until cancelled",
    ...shape,
    handler: (_args, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve({}), { once: true });
      }),
  }),
];
const NAMES = ["echo", "weather.today", "report", "nosuch"] as const;
const IDS = ["c0", "c1", "c2"] as const;
const SECRETS: Record<string, string> = Object.fromEntries(IDS.map((id) => [id, `secret-of-${id}-0123456789abcdef`]));

function clientFor(server: SmcpServer, id: string) {
  return createClient({
    clientId: id,
    clientSecret: SECRETS[id] ?? "x".repeat(32),
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport: inProcessTransport(server),
  });
}

async function outcome(promise: Promise<unknown>): Promise<{ code: string; value?: unknown }> {
  try {
    return { code: "ok", value: await promise };
  } catch (error) {
    if (error instanceof SmcpError) return { code: error.code, value: error.details };
    throw error;
  }
}

/** The rules, written plainly: a tools: pattern matches the whole name, `*` any run of characters. */
function allows(scopes: string[] | undefined, tool: string): boolean {
  return (scopes ?? ["tools:*"]).some((scope) => {
    if (!scope.startsWith("tools:")) return false;
    const source = scope
      .slice(6)
      .split("*")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    return new RegExp(`^${source}$`, "s").test(tool);
  });
}

describe("the client registry format", () => {
  const key = { id: "k1", secret: "s".repeat(32) };
  it("is checked strictly: an unknown key names the key, the client and the source", () => {
    assert.throws(
      () => parseRegistry({ clients: { alice: { keys: [key], rate: "5/s" } } }, "clients.json"),
      /clients\.json: client 'alice': has an unknown key "rate"/,
    );
    assert.throws(
      () => parseRegistry({ clients: { alice: { keys: [{ ...key, colour: 1 }] } } }, "clients.json"),
      /clients\.json: client 'alice': keys\.0 has an unknown key "colour"/,
    );
    assert.throws(() => parseRegistry({ clients: {}, extra: 1 }, "f.json"), /f\.json: has an unknown key "extra"/);
    assert.throws(
      () => parseRegistry({ clients: { a: { keys: [key], scopes: ["tool:x"] } } }, "f"),
      /client 'a': scopes\.0 is not one of tools:<pattern>/,
    );
    assert.throws(() => parseRegistry({ clients: { a: { keys: [key, key] } } }, "f"), /key id "k1" is used twice/);
    assert.throws(
      () => parseRegistry({ clients: { a: { keys: [{ id: "k1", secret: "x".repeat(20), public: "ed25519:x" }] } } }, "f"),
      /exactly one of "secret", "public" or "jwk"/,
    );
    // Never the value of a secret in an error.
    try {
      parseRegistry({ clients: { a: { keys: [{ id: "k 1", secret: "TOPSECRETVALUE" }] } } }, "f");
      assert.fail("should throw");
    } catch (error) {
      assert.doesNotMatch((error as Error).message, /TOPSECRETVALUE/);
    }
  });

  it("reads the keyring file's older shapes as the same clients", () => {
    const secret = "s".repeat(32);
    assert.deepEqual(clientFromKeyring("a", secret, "k.json"), { keys: [{ id: "k1", secret }] });
    assert.deepEqual(clientFromKeyring("a", [secret, `${secret}2`], "k.json").keys.length, 2);
    assert.deepEqual(clientFromKeyring("a", { keys: secret, rate: "5/s", max_open_jobs: 3, scopes: ["tools:echo"] }, "k.json"), {
      keys: [{ id: "k1", secret }],
      scopes: ["tools:echo"],
      limits: { rate: "5/s", max_open_jobs: 3 },
    });
    assert.throws(
      () => clientFromKeyring("a", { keys: secret, colour: 1 }, "k.json"),
      /k\.json: client 'a': has an unknown key "colour"/,
    );
  });

  it("a file readable by others is refused; a missing one is empty only when asked", () => {
    const dir = mkdtempSync(join(tmpdir(), "smcp-reg-"));
    const path = join(dir, "clients.json");
    assert.throws(() => readRegistryFile(path), /no such clients file/);
    assert.deepEqual(readRegistryFile(path, { missingOk: true }), { clients: {} });
    writeFileSync(path, JSON.stringify({ clients: {} }), { mode: 0o644 });
    chmodSync(path, 0o644);
    assert.throws(() => readRegistryFile(path), /readable by other users/);
  });
});

function serverWith(doc: RegistryDocument, jobs?: Awaited<ReturnType<typeof openStores>>): SmcpServer {
  const server = createServer({
    keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: {} },
    tools: TOOLS,
    clients: compileRegistry(doc, "test"),
    ...(jobs ? { stores: jobs } : {}),
  });
  servers.push(server);
  return server;
}

describe("registry rules", () => {
  it("disabled is unknown_client, an expired key is bad_signature, a live second key still verifies", async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const server = serverWith({
      clients: {
        c0: { keys: [{ id: "k1", secret: SECRETS.c0 as string }], disabled: true },
        c1: { keys: [{ id: "k1", secret: SECRETS.c1 as string, not_after: past }] },
        c2: {
          keys: [
            { id: "old", secret: "old-secret-0123456789abcdef", not_after: past },
            { id: "new", secret: SECRETS.c2 as string },
          ],
        },
      },
    });
    assert.equal((await outcome(clientFor(server, "c0").call("echo", {}))).code, "unknown_client");
    assert.equal((await outcome(clientFor(server, "c1").call("echo", {}))).code, "bad_signature");
    assert.equal((await outcome(clientFor(server, "c2").call("echo", {}))).code, "ok");
  });

  it("jobs:all lists, polls and cancels another client's jobs; others see only their own", async () => {
    const server = serverWith({
      clients: {
        c0: { keys: [{ id: "k1", secret: SECRETS.c0 as string }] },
        c1: { keys: [{ id: "k1", secret: SECRETS.c1 as string }], scopes: ["jobs:all"] },
        c2: { keys: [{ id: "k1", secret: SECRETS.c2 as string }] },
      },
    });
    const { job_id } = (await clientFor(server, "c0").call("report", {})) as { job_id: string };
    assert.equal((await outcome(clientFor(server, "c2").call("poll_job", { job_id }))).code, "unknown_job");
    const mine = (await clientFor(server, "c2").call("list_jobs", { client_id: "c0" })) as { jobs: unknown[] };
    assert.deepEqual(mine.jobs, []);
    const ops = clientFor(server, "c1");
    assert.equal((await outcome(ops.call("report", {}))).code, "forbidden", "jobs:all alone allows no tool");
    const all = (await ops.call("list_jobs", { client_id: "c0" })) as { jobs: { job_id: string; client_id: string }[] };
    assert.deepEqual(
      all.jobs.map((j) => [j.job_id, j.client_id]),
      [[job_id, "c0"]],
    );
    assert.equal((await outcome(ops.call("poll_job", { job_id }))).code, "ok");
    const cancelled = (await ops.call("cancel_job", { job_id })) as { cancelled: boolean };
    assert.equal(cancelled.cancelled, true);
  });

  it("a removed or disabled client's queued and running jobs are cancelled; a request in flight finishes under the old registry", async () => {
    const doc: RegistryDocument = {
      clients: {
        c0: { keys: [{ id: "k1", secret: SECRETS.c0 as string }] },
        c1: { keys: [{ id: "k1", secret: SECRETS.c1 as string }] },
      },
    };
    const server = serverWith(doc);
    const a = (await clientFor(server, "c0").call("report", {})) as { job_id: string };
    const b = (await clientFor(server, "c1").call("report", {})) as { job_id: string };
    await until(async () => (await server.jobStore.get(a.job_id))?.state === "running");
    const { c0: _gone, ...rest } = doc.clients;
    const cancelled = await server.setClients(
      compileRegistry({ clients: { ...rest, c1: { ...(rest.c1 as RegistryDocument["clients"][string]), disabled: true } } }, "t"),
    );
    assert.equal(cancelled, 2);
    assert.equal((await server.jobStore.get(a.job_id))?.state, "cancelled");
    assert.equal((await server.jobStore.get(b.job_id))?.state, "cancelled");
    assert.equal((await outcome(clientFor(server, "c0").call("echo", {}))).code, "unknown_client");
  });

  it("a followed file: a change applies, a bad file keeps the old registry and is reported stale until fixed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smcp-follow-"));
    const path = join(dir, "clients.json");
    const write = (doc: unknown) => writeFileSync(path, JSON.stringify(doc), { mode: 0o600 });
    const good = (scopes: string[]) => ({ clients: { c0: { keys: [{ id: "k1", secret: SECRETS.c0 }], scopes } } });
    write(good(["tools:echo"]));
    const server = serverWith(readRegistryFile(path));
    const events: { ok: boolean }[] = [];
    const follower = followRegistry(
      {
        server,
        load: async () => ({ clients: compileRegistry(readRegistryFile(path), path) }),
        file: path,
        pollMs: 200,
        onReload: (e) => events.push(e),
      },
      1,
    );
    try {
      const c0 = clientFor(server, "c0");
      assert.equal((await outcome(c0.call("weather.today", {}))).code, "forbidden");
      write(good(["tools:weather.*"]));
      await until(async () => (await outcome(c0.call("weather.today", {}))).code === "ok", 5000, "the new scopes");
      writeFileSync(path, "{ not json");
      await until(() => follower.status.stale !== undefined, 5000, "stale");
      assert.equal(follower.status.stale?.reason, "invalid_json");
      const health = server.healthFacts as { registry: { stale: { reason: string } } };
      assert.equal(health.registry.stale.reason, "invalid_json");
      assert.equal((await outcome(c0.call("weather.today", {}))).code, "ok", "the old registry stays");
      write(good(["tools:echo"]));
      await until(() => follower.status.stale === undefined, 5000, "fresh again");
      assert.equal((await outcome(c0.call("weather.today", {}))).code, "forbidden");
      assert.ok(events.some((e) => !e.ok));
    } finally {
      follower.close();
    }
  });
});

const BACKENDS: { name: string; url: () => string; cleanup?: (url: string) => Promise<void> }[] = [
  { name: "memory", url: () => "memory" },
  { name: "sqlite", url: () => `sqlite:${join(mkdtempSync(join(tmpdir(), "smcp-reg-")), "smcp.db")}` },
  {
    name: "redis",
    url: () => `${REDIS_URL}?prefix=test-authz-${randomBytes(4).toString("hex")}:`,
    cleanup: (url) => deleteKeys(new URL(url).searchParams.get("prefix") as string),
  },
];

const clientArb = fc.record({
  scopes: fc.option(
    fc.uniqueArray(fc.constantFrom("tools:*", "tools:echo", "tools:weather.*", "tools:re*", "tools:no*", "jobs:all"), {
      maxLength: 3,
    }),
    { nil: undefined },
  ),
  disabled: fc.boolean(),
  expired: fc.boolean(),
});
const requestArb = fc.record({
  client: fc.constantFrom(...IDS),
  op: fc.oneof(
    fc.record({ kind: fc.constant("call" as const), tool: fc.constantFrom(...NAMES) }),
    fc.record({ kind: fc.constant("poll" as const), job: fc.nat(20) }),
    fc.record({ kind: fc.constant("list" as const) }),
  ),
});

for (const backend of BACKENDS) {
  describe(`random registries and requests agree with the reference model (${backend.name})`, () => {
    it("who may call what, who sees which jobs", async (t) => {
      const url = backend.url();
      const storage = await openRegistryStorage(url);
      const stores = await openStores(url);
      // Memory registries are per process; the others are read back from the store, as a replica would.
      const server = createServer({
        keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: {} },
        tools: TOOLS,
        stores,
      });
      servers.push(server);
      const jobs: { id: string; owner: string }[] = [];
      try {
        await runProperty(
          t,
          fc.record({
            registry: fc.record({ c0: clientArb, c1: clientArb, c2: clientArb }),
            requests: fc.array(requestArb, { minLength: 1, maxLength: 10 }),
          }),
          async ({ registry, requests }) => {
            const past = new Date(Date.now() - 60_000).toISOString();
            const future = new Date(Date.now() + 3_600_000).toISOString();
            const doc: RegistryDocument = { clients: {} };
            for (const id of IDS) {
              const c = registry[id];
              doc.clients[id] = {
                keys: [{ id: "k1", secret: SECRETS[id] as string, not_after: c.expired ? past : future }],
                ...(c.scopes === undefined ? {} : { scopes: c.scopes }),
                ...(c.disabled ? { disabled: true } : {}),
              };
            }
            await updateStoredRegistry(storage, "test", () => doc);
            const stored = await readStoredRegistry(storage, "test");
            await server.setClients(compileRegistry(stored.document, "test"), stored.version);
            for (const { client, op } of requests) {
              const c = registry[client];
              const api = clientFor(server, client);
              const refused = c.disabled ? "unknown_client" : c.expired ? "bad_signature" : undefined;
              if (op.kind === "call") {
                const got = await outcome(api.call(op.tool, {}));
                const expected =
                  refused ?? (!allows(c.scopes, op.tool) ? "forbidden" : op.tool === "nosuch" ? "unknown_tool" : "ok");
                assert.equal(got.code, expected, `${client} calls ${op.tool} with ${JSON.stringify(c)}`);
                if (got.code === "forbidden") assert.deepEqual(got.value, { scope: `tools:${op.tool}` });
                if (got.code === "ok" && op.tool === "report")
                  jobs.push({ id: (got.value as { job_id: string }).job_id, owner: client });
              } else if (op.kind === "poll") {
                const job = jobs[op.job % Math.max(1, jobs.length)];
                if (!job) continue;
                const got = await outcome(api.call("poll_job", { job_id: job.id }));
                const sees = job.owner === client || c.scopes?.includes("jobs:all") === true;
                // A job cancelled when its owner was removed or disabled answers `cancelled`: seen all the same.
                const code = got.code === "cancelled" ? "ok" : got.code;
                assert.equal(code, refused ?? (sees ? "ok" : "unknown_job"), `${client} polls ${job.owner}'s job`);
              } else {
                const got = await outcome(api.call("list_jobs", { limit: 100 }));
                assert.equal(got.code, refused ?? "ok");
                if (got.code !== "ok") continue;
                const listed = (got.value as { jobs: { job_id: string }[] }).jobs.map((j) => j.job_id);
                const all = c.scopes?.includes("jobs:all") === true;
                // Jobs of clients removed since were cancelled, never deleted: still listed to their readers.
                for (const id of listed) {
                  const job = jobs.find((j) => j.id === id);
                  assert.ok(job && (all || job.owner === client), `${client} sees only what it may`);
                }
                const mine = jobs.filter((j) => j.owner === client).slice(-5);
                for (const job of mine) if (!all) assert.ok(listed.includes(job.id) || listed.length === 100);
              }
            }
          },
          { runs: 100, seconds: 5 },
        );
      } finally {
        await server.close();
        await storage.close();
        await backend.cleanup?.(url);
      }
    });
  });
}
