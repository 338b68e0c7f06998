// A server started through `npx` (npm exec) stops when the npx process is
// stopped: npm exec doesn't forward signals, so `npx smcp serve & … kill %1`
// (the README's quick start) used to leave the server running, reparented
// to init, holding its port.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort, start } from "./process-helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "smcp-npx-"));
after(() => {
  // Should the fix regress, the orphaned server would hold the runner's pipe forever: stop it by its path.
  spawnSync("pkill", ["-f", dir]);
  rmSync(dir, { recursive: true, force: true });
});

/** True once nothing accepts connections on the port, polled until the deadline. */
async function portClosed(port: number, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    } catch (e) {
      if ((e as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED") return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

it("smcp serve started by npm exec stops when npm exec is stopped", { timeout: 60_000 }, async () => {
  // A user's project with smcp installed: npm exec finds the bin in node_modules/.bin, no download.
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "npx-user", version: "1.0.0", private: true }));
  mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
  symlinkSync(ROOT, join(dir, "node_modules", "smcp"));
  symlinkSync(join("..", "smcp", "dist", "cli", "main.js"), join(dir, "node_modules", ".bin", "smcp"));
  const port = await freePort();
  const npx = await start(
    "npm",
    ["exec", "--offline", "--", "smcp", "serve", "--store", "memory", "--port", String(port)],
    { HOME: process.env.HOME, npm_config_update_notifier: "false" },
    dir,
  );
  assert.match(npx.line, /listening on http:\/\/127\.0\.0\.1:/);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
  await npx.stop("SIGTERM");
  assert.ok(await portClosed(port, 10_000), "the server outlived its npx launcher");
  assert.match(npx.stderr(), /launcher gone: finishing in-flight requests/);
});
