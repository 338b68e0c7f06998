/**
 * A stop that can't finish still ends: `serve` and `worker` whose Redis went
 * away before them (a cluster or database stopped first) used to wait
 * forever in their graceful close, so a supervisor's stop (and the docs'
 * Redis Cluster recipe) hung. Past the deadline they exit with code 1 and say
 * why; with the store up, they stop cleanly with 0.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Child, freePort, start, startCli } from "./process-helpers.js";
import { redisReady } from "./redis-helpers.js";

const CRUNCH = fileURLToPath(new URL("../examples/crunch.js", import.meta.url));
const KEYS = {
  SMCP_SERVER_SECRET: "stop-deadline-server-secret-0123456789abcdef",
  SMCP_CLIENTS: "c1=stop-deadline-client-secret-0123456789abcdef",
  SMCP_STOP_DEADLINE_MS: "1500",
};
const children: Child[] = [];
after(async () => {
  for (const c of children) await c.stop("SIGKILL");
});

async function redisServer(): Promise<{ port: number; child: Child }> {
  const port = await freePort();
  const child = await start("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  children.push(child);
  await redisReady(port);
  return { port, child };
}

/** SIGTERM, then how it ended and how long it took. */
async function stopTimed(c: Child): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const exited = once(c.process, "exit");
  c.process.kill("SIGTERM");
  const [code] = (await exited) as [number | null];
  return { code, ms: Date.now() - t0 };
}

describe("a stop that can't finish still ends", () => {
  for (const command of ["serve", "worker"] as const) {
    it(`${command}: Redis gone first, SIGTERM exits 1 at the deadline and says why; Redis up, it exits 0`, async () => {
      const args = (port: number) =>
        command === "serve"
          ? ["serve", "--port", "0", "--store", `redis://127.0.0.1:${port}/0`, "--config", "/nonexistent/keyring.json"]
          : ["worker", "--store", `redis://127.0.0.1:${port}/0`, "--tools", CRUNCH];

      const up = await redisServer();
      const clean = await startCli(args(up.port), KEYS);
      children.push(clean);
      assert.equal((await stopTimed(clean)).code, 0, clean.stderr());

      const gone = await redisServer();
      const stuck = await startCli(args(gone.port), KEYS);
      children.push(stuck);
      await gone.child.stop("SIGKILL");
      const { code, ms } = await stopTimed(stuck);
      assert.equal(code, 1, stuck.stderr());
      assert.ok(ms >= 1400, `exited after ${ms} ms, before the deadline`);
      assert.match(stuck.stderr(), /not stopped 1\.5 s after SIGTERM \(is the store reachable\?\): exiting now/);
    });
  }
});
