import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);

describe("examples stay true", () => {
  it("examples/library.ts runs and prints the typed results", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/library.ts"], { timeout: 60_000 });
    assert.match(stdout, /^Lisbon: 21\.5 °C$/m);
    assert.match(stdout, /^report: Quarterly numbers, 3 pages$/m);
  });
});
