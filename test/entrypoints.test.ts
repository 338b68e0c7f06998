import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const LOAD = fileURLToPath(new URL("./entry/load.mjs", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Imports an entry point (by its package name, as a user would) in a fresh node and reports what it loaded. */
function load(specifier: string): { ms: number; seen: string[]; addons: string[] } {
  const out = execFileSync(process.execPath, [LOAD, specifier], { cwd: ROOT, encoding: "utf8" });
  return JSON.parse(out) as { ms: number; seen: string[]; addons: string[] };
}

const packagesIn = (seen: string[]) =>
  new Set(seen.flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []));

describe("entry points load only what they need (issue 11)", () => {
  it("`smcp` (client, protocol, core server) loads no native addon, no Redis, no SQLite, no MCP SDK, no metrics or logs", () => {
    const { seen, addons } = load("smcp");
    const packages = packagesIn(seen);
    for (const heavy of [
      "better-sqlite3",
      "ioredis",
      "bullmq",
      "msgpackr",
      "@modelcontextprotocol/sdk",
      "prom-client",
      "pino",
      "ajv",
    ]) {
      assert.ok(!packages.has(heavy), `smcp loaded ${heavy}`);
    }
    assert.deepEqual(addons, [], "no native addon");
    // @noble/curves (pure JS, with its @noble/hashes) vets Ed25519 public keys where they are read (SPEC §7);
    // @opentelemetry/api (pure JS, no-op without an SDK) carries the trace context (SPEC §10).
    assert.deepEqual(
      [...packages].sort(),
      ["@noble/curves", "@noble/hashes", "@opentelemetry/api", "zod"],
      "zod, noble and the OpenTelemetry API are its dependencies at import",
    );
  });

  it("`smcp/sqlite` does not load Redis; `smcp/redis` does not load SQLite; neither loads pg", () => {
    const sqlite = packagesIn(load("smcp/sqlite").seen);
    assert.ok(sqlite.has("better-sqlite3"));
    assert.ok(!sqlite.has("ioredis") && !sqlite.has("bullmq") && !sqlite.has("pg"));
    const redis = packagesIn(load("smcp/redis").seen);
    assert.ok(redis.has("ioredis") && redis.has("bullmq"));
    assert.ok(!redis.has("better-sqlite3") && !redis.has("pg"));
  });

  it("`smcp/postgres` loads pg and nothing of Redis or SQLite, and no native addon", () => {
    const { seen, addons } = load("smcp/postgres");
    const postgres = packagesIn(seen);
    assert.ok(postgres.has("pg"));
    for (const other of ["ioredis", "bullmq", "msgpackr", "better-sqlite3"]) assert.ok(!postgres.has(other), `loaded ${other}`);
    assert.deepEqual(addons, [], "no native addon (pg-native is not used)");
  });

  it("`smcp/stores` loads a backend only when a URL asks for it", () => {
    const stores = packagesIn(load("smcp/stores").seen);
    for (const heavy of ["better-sqlite3", "ioredis", "bullmq", "pg"])
      assert.ok(!stores.has(heavy), `smcp/stores loaded ${heavy}`);
  });
});
