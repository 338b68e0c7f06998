/**
 * One registry for many replicas (issue 20): two `smcp serve` processes on
 * one SQLite file, and two on one Redis, follow the registry the store
 * keeps; a change made with `smcp clients … --store URL` takes effect on
 * both within 1 s. Measures how long a scope change and a revocation take
 * to reach each replica (p50 and max, printed as diagnostics).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { updateStoredRegistry } from "../src/auth/store.js";
import { openRegistryStorage } from "../src/backends/registry.js";
import { runCli } from "../src/cli/run.js";
import { createClient, httpTransport, SmcpError } from "../src/index.js";
import { captureIO } from "./cli-helpers.js";
import { SERVER_ID, SERVER_SECRET } from "./helpers.js";
import { type Child, startCli } from "./process-helpers.js";
import { deleteKeys, REDIS_URL } from "./redis-helpers.js";

const ROUNDS = Number(process.env.REPLICA_ROUNDS ?? 5);

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof SmcpError) return error.code;
    throw error;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Calls until `want` is the answer; resolves to the ms it took from `since`. Fails past 1 s (the promise). */
async function seen(call: () => Promise<string>, want: string, since: number): Promise<number> {
  for (;;) {
    const got = await call();
    const elapsed = performance.now() - since;
    if (got === want) return elapsed;
    assert.ok(elapsed < 1000, `still ${got}, not ${want}, after ${Math.round(elapsed)} ms`);
  }
}

for (const backend of [
  { name: "SQLite", url: () => `sqlite:${join(mkdtempSync(join(tmpdir(), "smcp-replicas-")), "smcp.db")}` },
  { name: "Redis", url: () => `${REDIS_URL}?prefix=test-replicas-${randomBytes(4).toString("hex")}:` },
]) {
  describe(`two replicas on one ${backend.name} store`, () => {
    it("follow the store's registry: scope changes and revocations reach both within 1 s", async (t) => {
      const url = backend.url();
      const io = captureIO();
      assert.equal(
        await runCli(["clients", "add", "alice", "--scope", "tools:batch_sum", "--store", url, "--json"], io),
        0,
        io.errText(),
      );
      const { secret } = JSON.parse(io.outText()) as { secret: string };
      const replicas: Child[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          replicas.push(
            await startCli(
              ["serve", "--port", "0", "--store", url, "--clients-from-store", "--server-id", SERVER_ID, "--log-level", "warn"],
              { SMCP_SERVER_SECRET: SERVER_SECRET, SMCP_CONFIG: join(tmpdir(), `none-${randomBytes(4).toString("hex")}.json`) },
            ),
          );
        }
        const clients = replicas.map((r) =>
          createClient({
            clientId: "alice",
            clientSecret: secret,
            serverId: SERVER_ID,
            serverSecret: SERVER_SECRET,
            transport: httpTransport(r.line.replace(/^listening on /, "")),
          }),
        );
        const long = (c: (typeof clients)[number]) => () => code(c.call("start_long_task", { seconds: 1, payload: {} }));
        for (const c of clients) assert.equal(await long(c)(), "forbidden");
        const storage = await openRegistryStorage(url);
        const scopeMs: number[] = [];
        const revokeMs: number[] = [];
        try {
          for (let round = 0; round < ROUNDS; round++) {
            // A scope change, as `smcp clients scopes` makes it.
            let since = performance.now();
            await updateStoredRegistry(storage, "test", (doc) => {
              const alice = doc.clients.alice as NonNullable<(typeof doc.clients)["alice"]>;
              return { clients: { ...doc.clients, alice: { ...alice, scopes: ["tools:*"] } } };
            });
            for (const ms of await Promise.all(clients.map((c) => seen(long(c), "ok", since)))) scopeMs.push(ms);
            // A revocation (disable), then allowed again with the narrow scope for the next round.
            since = performance.now();
            await updateStoredRegistry(storage, "test", (doc) => {
              const alice = doc.clients.alice as NonNullable<(typeof doc.clients)["alice"]>;
              return { clients: { ...doc.clients, alice: { ...alice, disabled: true } } };
            });
            for (const ms of await Promise.all(
              clients.map((c) => seen(() => code(c.call("batch_sum", { numbers: [1] })), "unknown_client", since)),
            )) {
              revokeMs.push(ms);
            }
            await updateStoredRegistry(storage, "test", (doc) => {
              const { disabled: _d, ...alice } = doc.clients.alice as NonNullable<(typeof doc.clients)["alice"]>;
              return { clients: { ...doc.clients, alice: { ...alice, scopes: ["tools:batch_sum"] } } };
            });
            for (const c of clients) await seen(long(c), "forbidden", performance.now());
          }
        } finally {
          await storage.close();
        }
        // `smcp clients remove` revokes on both replicas.
        const since = performance.now();
        assert.equal(await runCli(["clients", "remove", "alice", "--store", url], captureIO()), 0);
        for (const c of clients) await seen(() => code(c.call("batch_sum", { numbers: [1] })), "unknown_client", since);
        const line = (what: string, v: number[]) =>
          `${backend.name} ${what}: n=${v.length} p50=${percentile(v, 50).toFixed(0)} ms max=${Math.max(...v).toFixed(0)} ms`;
        t.diagnostic(line("scope change", scopeMs));
        t.diagnostic(line("revocation", revokeMs));
        assert.ok(Math.max(...scopeMs, ...revokeMs) < 1000);
      } finally {
        for (const r of replicas) await r.stop();
        if (backend.name === "Redis") await deleteKeys(new URL(url).searchParams.get("prefix") as string);
      }
    });
  });
}
