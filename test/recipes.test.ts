import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "./process-helpers.js";
import { deleteKeys } from "./redis-helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The shell block that follows `<!-- recipe: NAME -->` in the README. */
function recipe(name: string): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const at = readme.indexOf(`<!-- recipe: ${name} -->`);
  assert.ok(at >= 0, `README has no recipe ${name}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, `recipe ${name} has no sh block`);
  return block[1] as string;
}

/**
 * Runs a README recipe in one bash, as written, with two substitutions so it
 * cannot collide with anything else on the machine: the port (callers reach it
 * through SMCP_URL) and the Redis key prefix. After a background `smcp serve`
 * line it waits until that server answers /healthz; at the end it stops every
 * background process.
 */
async function runRecipe(
  script: string,
  port: number,
  prefix: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const lines = script
    .replaceAll("8787", String(port))
    .replaceAll("prefix=crunch:", `prefix=${prefix}`)
    .split("\n")
    .flatMap((line) =>
      /smcp serve .*&\s*(#.*)?$/.test(line)
        ? [line, `for i in $(seq 1 300); do curl -sf http://127.0.0.1:${port}/healthz >/dev/null && break; sleep 0.1; done`]
        : [line],
    );
  const full = ["set -e", ...lines, "kill $(jobs -p) 2>/dev/null || true", "wait || true"].join("\n");
  const child = spawn("bash", ["-c", full], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SMCP_URL: `http://127.0.0.1:${port}/mcp`,
      SMCP_CONFIG: "/nonexistent/keyring.json",
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: whatever the recipe started in the background is stopped with it.
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    err += c;
  });
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  try {
    process.kill(-(child.pid as number), "SIGTERM");
  } catch {
    // the group is already gone
  }
  await new Promise((resolve) => child.stdout.once("close", resolve));
  return { code, out, err };
}

describe("README recipes run as written", () => {
  const prefix = `smcp-recipe-${randomUUID().slice(0, 8)}:`;
  after(() => deleteKeys(prefix));

  it("an API replica and two workers with a custom job tool on Redis, and the caller's side", async () => {
    const port = await freePort();
    const { code, out, err } = await runRecipe(recipe("redis-workers"), port, prefix);
    assert.equal(code, 0, err);
    assert.match(out, /"median": 2/);
    const crunched = /\{\s*"sorted": \[\s*1,\s*2,\s*3\s*\],\s*"worker": (\d+)\s*\}/.exec(out);
    assert.ok(crunched, out);
    // The job ran in one of the two worker processes, not in the API replica.
    const workers = [...out.matchAll(/^worker \S+\/(\d+)\/\S+ on /gm)].map((m) => m[1]);
    assert.equal(workers.length, 2, out);
    assert.ok(workers.includes(crunched[1]), `ran in ${crunched[1]}, workers ${workers.join(", ")}`);
    assert.match(err, /\[#+-*\] \d\/3 step \d of 3/, "progress shown as a bar with its message");
  });
});
