import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sql } from "./postgres-helpers.js";
import { freePort } from "./process-helpers.js";
import { deleteKeys } from "./redis-helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// The database the PostgreSQL recipe's administrator lines talk to (as written: postgres on 127.0.0.1).
const PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres";

/** The shell block that follows `<!-- recipe: NAME -->` in the README (or another document of the repository). */
function recipe(name: string, document = "README.md"): string {
  const readme = readFileSync(new URL(`../${document}`, import.meta.url), "utf8");
  const at = readme.indexOf(`<!-- recipe: ${name} -->`);
  assert.ok(at >= 0, `${document} has no recipe ${name}`);
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
  names: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  let text = script;
  for (const [name, unique] of Object.entries(names)) text = text.replaceAll(name, unique);
  const lines = text
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

describe("docs/stores.md recipes run as written", () => {
  // The role and schema get names of their own, so the recipe never meets another run's (or a reader's).
  const suffix = randomUUID().slice(0, 8);
  const names = { smcp_app: `smcp_app_${suffix}`, smcp_demo: `smcp_demo_${suffix}` };
  after(() =>
    sql(async (c) => {
      await c.query("SET client_min_messages = warning");
      await c.query(`DROP SCHEMA IF EXISTS ${names.smcp_demo} CASCADE`);
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [names.smcp_app]);
      await c.query(`DROP ROLE IF EXISTS ${names.smcp_app}`);
    }, PG_ADMIN),
  );

  it("PostgreSQL: a role and a schema it owns, migrate, an API replica and a worker, a job to its end", async () => {
    const port = await freePort();
    const { code, out, err } = await runRecipe(recipe("postgres", "docs/stores.md"), port, "", names);
    assert.equal(code, 0, err);
    assert.match(out, /^7$/m, "the printed SQL creates seven tables");
    assert.match(out, new RegExp(`schema ${names.smcp_demo}: version 0 -> 1`));
    assert.match(out, /"hello": "postgres"/);
    assert.match(out, /start_long_task \| done +\| +1/);
  });
});
