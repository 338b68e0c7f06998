/**
 * The docs run as written: every shell block marked `<!-- recipe: NAME -->`
 * in README.md and docs/*.md runs in a fresh folder laid out like a user's
 * project (this smcp and zod installed, the repository's examples/ beside it,
 * `npx smcp` running this build), caller's side included. `set -e`: any
 * command that fails fails the recipe.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sql } from "./postgres-helpers.js";
import { freePort } from "./process-helpers.js";
import { deleteKeys } from "./redis-helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// The PostgreSQL recipe's role and schema get names of this run's own (dropped after), so it never meets another
// run's, or a reader's; its administrator lines talk to this server.
const PG_SUFFIX = randomUUID().slice(0, 8);
const PG_NAMES: Record<string, string> = { smcp_app: `smcp_app_${PG_SUFFIX}`, smcp_demo: `smcp_demo_${PG_SUFFIX}` };
const PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres";
const dirs: string[] = [];
const RECIPE_DEADLINE_MS = 150_000;
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Every marked recipe, by name, with the page it is on. */
function recipes(): { name: string; page: string; script: string }[] {
  const pages = [
    "README.md",
    ...readdirSync(join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`),
  ];
  const out: { name: string; page: string; script: string }[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), "utf8");
    for (const match of text.matchAll(/<!-- recipe: ([\w-]+) -->\s*```sh\n([\s\S]*?)```/g)) {
      out.push({ name: match[1] as string, page, script: match[2] as string });
    }
  }
  return out;
}

/** A folder like a user's project: smcp and zod installed, examples/ beside it, `npx smcp`/`npx tsx` resolved locally. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), "smcp-docs-"));
  dirs.push(dir);
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules", "smcp"));
  symlinkSync(join(ROOT, "node_modules", "zod"), join(dir, "node_modules", "zod"));
  symlinkSync(join(ROOT, "examples"), join(dir, "examples"));
  mkdirSync(join(dir, ".bin"));
  // npx as the user's installed package would run it: this build's CLI, never a download.
  const npx = `#!/usr/bin/env bash
case "$1" in
  smcp) shift; exec "${process.execPath}" "${join(ROOT, "dist/cli/main.js")}" "$@" ;;
  tsx) shift; exec "${join(ROOT, "node_modules/.bin/tsx")}" "$@" ;;
  *) echo "the docs test runs only npx smcp and npx tsx, not: $*" >&2; exit 127 ;;
esac
`;
  writeFileSync(join(dir, ".bin", "npx"), npx);
  chmodSync(join(dir, ".bin", "npx"), 0o755);
  return dir;
}

/**
 * Runs a recipe in one bash, as written, with substitutions so it can't
 * collide with anything else on the machine: the port (8787), the Redis key
 * prefix, and the PostgreSQL role and schema. At the end every background
 * process is stopped.
 */
async function run(script: string, port: number, prefix: string): Promise<{ code: number | null; out: string; err: string }> {
  const dir = project();
  let body = script.replaceAll("8787", String(port)).replaceAll("prefix=crunch:", `prefix=${prefix}`);
  for (const [name, unique] of Object.entries(PG_NAMES)) body = body.replaceAll(name, unique);
  const full = ["set -e", body, "kill $(jobs -p) 2>/dev/null || true", "wait || true"].join("\n");
  const child = spawn("bash", ["-c", full], {
    cwd: dir,
    env: {
      PATH: `${join(dir, ".bin")}:${process.env.PATH}`,
      HOME: dir,
      // A caller whose server's keys came from the environment finds it here (the recipe's own port).
      SMCP_URL: `http://127.0.0.1:${port}/mcp`,
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: whatever the recipe started in the background is stopped with it.
    detached: true,
  });
  // Listened for from the start: the output may close before the process's exit is seen.
  const closed = new Promise((resolve) => child.stdout.once("close", resolve));
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => {
    out += c;
  });
  child.stderr.on("data", (c) => {
    err += c;
  });
  // A recipe that hangs is stopped before the test's own timeout, so its failure shows what it printed so far.
  const deadline = setTimeout(() => {
    err += `\n[docs test: stopped after ${RECIPE_DEADLINE_MS / 1000} s]`;
    process.kill(-(child.pid as number), "SIGKILL");
  }, RECIPE_DEADLINE_MS);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearTimeout(deadline);
  try {
    process.kill(-(child.pid as number), "SIGTERM");
  } catch {
    // the group is already gone
  }
  await closed;
  return { code, out, err };
}

/** What some recipes must print besides exiting 0. */
const EXPECT: Record<string, (out: string, err: string) => void> = {
  quickstart: (out) => {
    assert.match(out, /"total": 6\.5/);
    assert.match(out, /"hello": "world"/);
  },

  "own-tool": (out, err) => {
    assert.match(out, /"text": "hello, Ada"/);
    // The tool's own words and its ToolError details reach the caller.
    assert.match(err, /^error: tool_failed: there is nobody to greet$/m);
    assert.match(err, /^ {2}details: \{"hint":"give a name"\}$/m);
  },
  "client-from-env": (out) => {
    assert.match(out, /total: 6\.5/);
    assert.match(out, /^bad_args \[ 'numbers: expected array, got string' \]$/m);
    assert.match(out, /from: 'node'/);
  },
  "undici-transport": (out) => {
    assert.match(out, /total: 6\.5/);
  },
  "redis-workers": (out, err) => {
    assert.match(out, /"median": 2/);
    const crunched = /\{\s*"sorted": \[\s*1,\s*2,\s*3\s*\],\s*"worker": (\d+)\s*\}/.exec(out);
    assert.ok(crunched, out);
    // The job ran in one of the two worker processes, not in the API replica.
    const workers = [...out.matchAll(/^worker \S+\/(\d+)\/\S+ on /gm)].map((m) => m[1]);
    assert.equal(workers.length, 2, out);
    assert.ok(workers.includes(crunched[1]), `ran in ${crunched[1]}, workers ${workers.join(", ")}`);
    assert.match(err, /\[#+-*\] \d\/3 step \d of 3/, "progress shown as a bar with its message");
  },
  "redis-cluster": (out) => {
    assert.match(out, /"median": 2/);
    assert.match(out, /"sorted": \[\s*1,\s*2,\s*3\s*\]/);
  },
  postgres: (out) => {
    assert.match(out, /^7$/m, "the printed SQL creates seven tables");
    assert.match(out, new RegExp(`schema ${PG_NAMES.smcp_demo}: version 0 -> 2`));
    assert.match(out, /"hello": "postgres"/);
    assert.match(out, /start_long_task \| done +\| +1/);
  },
};

describe("the docs run as written (README.md, docs/*.md)", () => {
  const prefix = `smcp-recipe-${randomUUID().slice(0, 8)}:`;
  after(() => deleteKeys(prefix));
  after(() =>
    sql(async (c) => {
      await c.query("SET client_min_messages = warning");
      await c.query(`DROP SCHEMA IF EXISTS ${PG_NAMES.smcp_demo} CASCADE`);
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [PG_NAMES.smcp_app]);
      await c.query(`DROP ROLE IF EXISTS ${PG_NAMES.smcp_app}`);
    }, PG_ADMIN),
  );
  const found = recipes();
  it("there are recipes, each with a unique name", () => {
    assert.ok(found.length >= 3);
    assert.equal(new Set(found.map((r) => r.name)).size, found.length);
  });
  for (const { name, page, script } of found) {
    // Bounded: a recipe that hangs fails here instead of holding the suite.
    it(`${page}: ${name}`, { timeout: 180_000 }, async () => {
      const port = await freePort();
      const { code, out, err } = await run(script, port, prefix);
      assert.equal(code, 0, `${err}\n${out}`);
      EXPECT[name]?.(out, err);
    });
  }
});
