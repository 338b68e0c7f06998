/**
 * docs/tenants.md's "Tenants and permissions" runs as written: every ```sh
 * block after a `<!-- runnable -->` marker runs in a fresh folder, with
 * `smcp` on PATH as the built CLI (`npm run build` first) and its port
 * replaced by a free one. A failing command fails the test.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { BIN, freePort } from "./process-helpers.js";

const PAGE = fileURLToPath(new URL("../docs/tenants.md", import.meta.url));

function blocks(): string[] {
  const text = readFileSync(PAGE, "utf8");
  return [...text.matchAll(/<!-- runnable -->\s*```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

async function run(script: string): Promise<{ code: number | null; out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), "smcp-tenants-"));
  mkdirSync(join(dir, ".bin"));
  writeFileSync(join(dir, ".bin", "smcp"), `#!/usr/bin/env bash\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(dir, ".bin", "smcp"), 0o755);
  const port = String(await freePort());
  const body = ["set -e", script.replaceAll("8789", port), "kill $(jobs -p) 2>/dev/null || true", "wait || true"].join("\n");
  const child = spawn("bash", ["-c", body], {
    cwd: dir,
    env: { PATH: `${join(dir, ".bin")}:${process.env.PATH}`, HOME: dir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: the background server is stopped with it
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    err += c;
  });
  // A recipe that hangs (a server that never came up) fails after a minute instead of holding the suite.
  const timer = setTimeout(() => process.kill(-(child.pid as number), "SIGKILL"), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearTimeout(timer);
  try {
    process.kill(-(child.pid as number), "SIGTERM");
  } catch {
    // the group is already gone
  }
  return { code, out, err };
}

describe("docs/tenants.md runs as written", () => {
  // Bounded: a block that hangs (a loop waiting on a change that never comes) fails here instead.
  it("has runnable blocks, and each exits 0", { timeout: 180_000 }, async () => {
    const scripts = blocks();
    assert.ok(scripts.length > 0, "a <!-- runnable --> block");
    for (const script of scripts) {
      const { code, out, err } = await run(script);
      assert.equal(code, 0, `exit ${code}\nstdout:\n${out}\nstderr:\n${err}`);
      assert.match(out, /alice {2}hmac {2}keys: k1 {2}scopes: tools:batch_sum/);
      assert.match(err, /error: forbidden: .*\nhint: .*tools:start_long_task/);
      assert.match(err, /unknown_client/);
      assert.match(out, /"registry":\{"version":\d+\}/);
    }
  });
});
