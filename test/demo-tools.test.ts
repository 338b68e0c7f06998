/** The reference tutorial's demo tools are served only while nothing else is, or when asked (issue 21). */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { clientAt, SERVE_KEYS } from "./helpers.js";
import { BIN, type Child, startCli } from "./process-helpers.js";

const CRUNCH = fileURLToPath(new URL("../examples/crunch.js", import.meta.url));
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
});

async function toolNames(flags: string[]): Promise<string[]> {
  const child = await startCli(["serve", "--port", "0", "--store", "memory", ...flags, ...SERVE_KEYS]);
  children.push(child);
  const client = clientAt(child.line);
  const { tools } = (await client.call("list_tools", {})) as { tools: { name: string }[] };
  await child.stop();
  return tools.map((t) => t.name).filter((name) => ["batch_sum", "start_long_task", "crunch", "median"].includes(name));
}

describe("demo tools (smcp serve)", () => {
  it("on with nothing else, off once --tools brings tools, on again with --demo-tools", async () => {
    assert.deepEqual(await toolNames([]), ["batch_sum", "start_long_task"]);
    assert.deepEqual((await toolNames(["--tools", CRUNCH])).sort(), ["crunch", "median"]);
    assert.deepEqual((await toolNames(["--tools", CRUNCH, "--demo-tools"])).sort(), [
      "batch_sum",
      "crunch",
      "median",
      "start_long_task",
    ]);
    assert.deepEqual(await toolNames(["--no-demo-tools", "--tools", CRUNCH]).then((n) => n.sort()), ["crunch", "median"]);
  });

  it("--demo-tools with --no-demo-tools is refused", async () => {
    const failed = await promisify(execFile)(process.execPath, [
      BIN,
      "serve",
      "--demo-tools",
      "--no-demo-tools",
      ...SERVE_KEYS,
    ]).then(
      () => undefined,
      (error: { stderr: string }) => error.stderr,
    );
    assert.match(failed ?? "", /--demo-tools and --no-demo-tools contradict each other/);
  });
});
