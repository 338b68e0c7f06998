/**
 * Any Node project can use smcp: a CommonJS project (`npm init -y`) can
 * `require("smcp")`, and `smcp serve --tools` loads a CommonJS tool module
 * (`module.exports = [tool]` or `{ tools }`) as well as an ES module; the
 * packed tarball installs into a fresh project with no build step.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { clientAt, SERVE_KEYS } from "./helpers.js";
import { BIN, type Child, startCli } from "./process-helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dirs: string[] = [];
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh CommonJS project whose node_modules has this smcp (and zod) linked in, as `npm install` would. */
function commonJsProject(): string {
  const dir = mkdtempSync(join(tmpdir(), "smcp-cjs-"));
  dirs.push(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "cjs-app", version: "1.0.0", main: "index.js" }));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules", "smcp"));
  symlinkSync(join(ROOT, "node_modules", "zod"), join(dir, "node_modules", "zod"));
  return dir;
}

const TOOL = `const { defineTool } = require("smcp");
const { z } = require("zod");
const shout = defineTool({
  name: "shout",
  description: "upper-cases its text",
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ text: z.string() }),
  handler: ({ text }) => ({ text: text.toUpperCase() }),
});
`;

async function served(dir: string, module: string): Promise<string> {
  const child = await startCli(["serve", "--port", "0", "--store", "memory", "--tools", join(dir, module), ...SERVE_KEYS]);
  children.push(child);
  const client = clientAt(child.line);
  const answer = (await client.call("shout", { text: "hi" })) as { text: string };
  await child.stop();
  return answer.text;
}

describe("CommonJS projects", () => {
  it('require("smcp") works in a project without "type": "module"', async () => {
    const dir = commonJsProject();
    writeFileSync(
      join(dir, "index.js"),
      'const s = require("smcp");\nconsole.log(typeof s.createServer, typeof s.defineTool);\n',
    );
    const { stdout } = await run(process.execPath, [join(dir, "index.js")], { cwd: dir });
    assert.equal(stdout.trim(), "function function");
  });

  it("smcp serve --tools loads module.exports = [tool] and module.exports = { tools }", async () => {
    const dir = commonJsProject();
    writeFileSync(join(dir, "list.js"), `${TOOL}module.exports = [shout];\n`);
    writeFileSync(join(dir, "object.js"), `${TOOL}module.exports = { tools: [shout] };\n`);
    assert.equal(await served(dir, "list.js"), "HI");
    assert.equal(await served(dir, "object.js"), "HI");
  });

  it("a tool module that can't load says what to do", async () => {
    const dir = commonJsProject();
    writeFileSync(join(dir, "none.js"), "module.exports = { answer: 42 };\n");
    writeFileSync(join(dir, "missing.js"), 'require("not-installed-anywhere");\n');
    for (const [module, hint] of [
      ["none.js", /exports no smcp tools; export defineTool\(\.\.\.\) values/],
      ["missing.js", /install what it imports/],
    ] as const) {
      const result = await run(process.execPath, [
        BIN,
        "serve",
        "--port",
        "0",
        "--store",
        "memory",
        "--tools",
        join(dir, module),
        ...SERVE_KEYS,
      ]).then(
        () => ({ code: 0, stderr: "" }),
        (error: { code: number; stderr: string }) => error,
      );
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, hint);
    }
  });

  it("npm pack's tarball installs into a fresh project with no build step, and require()s", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smcp-pack-"));
    dirs.push(dir);
    // --ignore-scripts: dist/ is already built by `npm test`; a rebuild would race the other tests.
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], { cwd: ROOT });
    const tarball = join(dir, stdout.trim().split("\n").at(-1) as string);
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0" }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: app });
    const { stdout: out } = await run(process.execPath, ["-e", 'console.log(typeof require("smcp").createClient)'], { cwd: app });
    assert.equal(out.trim(), "function");
  });
});
