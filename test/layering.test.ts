/**
 * ARCHITECTURE.md's layering, kept true: every import between src/ folders
 * (static, dynamic and type-only) goes where the table there allows, and no
 * two files import each other, directly or around a loop.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src", import.meta.url));

/** What each room of src/ may import, besides itself (ARCHITECTURE.md's table; keep them in step). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  util: [],
  protocol: ["util"],
  tools: ["protocol", "util"],
  jobs: ["tools", "protocol", "util"],
  backends: ["auth", "jobs", "protocol", "util"],
  auth: ["protocol", "util"],
  client: ["tools", "protocol", "util"],
  server: ["auth", "backends", "jobs", "tools", "client", "protocol", "util"],
  mcp: ["server", "client", "jobs", "tools", "protocol", "util"],
  console: ["client", "tools", "protocol", "util"],
  cli: ["console", "mcp", "server", "auth", "backends", "jobs", "tools", "client", "protocol", "util"],
};

/** The engine's own files, which backends never import (they get the interfaces, not the machinery). */
const ENGINE_ONLY = ["jobs/engine.ts", "jobs/runner.ts", "jobs/access.ts"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The project files a source file imports (relative specifiers only), as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = new Set<string>();
  const pattern = /(?:^|[\s;])(?:import|export)\s[^;]*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/gm;
  for (const match of text.matchAll(pattern)) {
    const spec = (match[1] ?? match[2]) as string;
    found.add(relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, ".ts"));
  }
  return [...found];
}

const roomOf = (path: string): string => (path.includes("/") ? (path.split("/")[0] as string) : "(entry)");

const graph = new Map(sources(SRC).map((file) => [relative(SRC, file), importsOf(file)]));

describe("layering (ARCHITECTURE.md)", () => {
  it("every import between rooms is one the table allows", () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const from = roomOf(file);
      if (from === "(entry)") continue; // src/index.ts, src/redis.ts...: entry points may curate anything
      const allowed = MAY_IMPORT[from];
      assert.ok(allowed, `src/${file} is in a room ARCHITECTURE.md does not name (${from})`);
      for (const target of imports) {
        const to = roomOf(target);
        if (to !== from && !allowed.includes(to)) wrong.push(`src/${file} imports src/${target} (${from} → ${to})`);
        if (from === "backends" && ENGINE_ONLY.includes(target)) wrong.push(`src/${file} imports the engine's src/${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("no import cycle between files", () => {
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
        return;
      }
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) if (graph.has(next)) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    assert.deepEqual(cycles, []);
  });

  it("the test can tell: a wrong import is caught", () => {
    // The checker itself, on a made-up edge: backends reaching up into the server.
    const from = roomOf("backends/redis/queue.ts");
    assert.equal(MAY_IMPORT[from]?.includes(roomOf("server/core.ts")), false);
  });
});
