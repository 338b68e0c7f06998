import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TESTS = "python/tests";

// The suite mostly waits (on real jobs, servers, pip), not on the CPU: three pytest processes run at
// once. These files go in groups of their own; every other test_*.py runs in the third group.
const OWN_GROUPS = [["test_generative.py"], ["test_package.py", "test_fake_server.py"]];

function groups(): string[][] {
  const files = readdirSync(fileURLToPath(new URL(`../${TESTS}`, import.meta.url))).filter((f) => /^test_.*\.py$/.test(f));
  const named = OWN_GROUPS.flat();
  for (const file of named) assert.ok(files.includes(file), `${TESTS}/${file} is missing; update test/python.test.ts`);
  return [...OWN_GROUPS, files.filter((f) => !named.includes(f)).sort()];
}

interface PytestRun {
  code: number;
  output: string;
}

/** Runs pytest on some files of python/tests against the package source (PYTHONPATH=python/src). */
function pytest(files: string[]): Promise<PytestRun> {
  const args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", ...files.map((f) => `${TESTS}/${f}`)];
  const env = { ...process.env, PYTHONPATH: "python/src", PYTHONDONTWRITEBYTECODE: "1" };
  return new Promise((resolve) => {
    execFile("python3", args, { cwd: ROOT, env, timeout: 300_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe("python client (pytest python/tests)", { concurrency: true }, () => {
  for (const files of groups()) {
    it(files.join(" "), async () => {
      const { code, output } = await pytest(files);
      const tail = output.slice(-6000);
      // Exit 5 is "no tests collected": a suite that ran nothing has not passed.
      assert.equal(code, 0, `pytest exited ${code}:\n${tail}`);
      const summary = output.match(/(\d+) passed/);
      assert.ok(summary && Number(summary[1]) > 0, `pytest passed no tests:\n${tail}`);
      assert.doesNotMatch(output, /\d+ (failed|errors?)\b/, tail);
    });
  }
});
