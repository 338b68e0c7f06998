/**
 * Logs appear when things happen (not when a 4 KB buffer fills), and a log
 * reader that stalls can't grow the server's memory without bound: past
 * `--log-buffer-bytes` lines are dropped, counted in /metrics, and reported
 * once the reader is back.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { clientAt, SERVE_KEYS, until } from "./helpers.js";
import { BIN, type Child, startCli } from "./process-helpers.js";

const children: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const stop of children) await stop();
});

describe("logs (smcp serve)", () => {
  it("a request's line is written while the server runs, at the default level", async () => {
    const child: Child = await startCli(["serve", "--port", "0", "--store", "memory", ...SERVE_KEYS]);
    children.push(() => child.stop("SIGKILL"));
    const client = clientAt(child.line.replace(/^listening on /, ""));
    await client.call("batch_sum", { numbers: [1, 2] });
    await until(() => child.stderr().includes('"tool":"batch_sum"'), 10_000, "the request's log line");
    const line =
      child
        .stderr()
        .split("\n")
        .find((l) => l.includes('"tool":"batch_sum"')) ?? "";
    assert.equal(JSON.parse(line).msg, "request");
  });

  it("a reader that stalls: lines past --log-buffer-bytes are dropped and counted, and reported once it reads again", async () => {
    const child = spawn(
      process.execPath,
      [BIN, "serve", "--port", "0", "--store", "memory", "--metrics", "--log-buffer-bytes", "65536", ...SERVE_KEYS],
      {
        env: { PATH: process.env.PATH },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.push(async () => {
      child.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    });
    // Nobody reads stderr yet: the pipe fills (64 KiB on Linux), then the server's buffer does.
    child.stderr.pause();
    const [ready] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const origin = ready.replace(/^listening on /, "");
    const client = clientAt(origin);
    const dropped = async () => {
      const text = await (await fetch(`${origin}/metrics`)).text();
      return Number(/^smcp_log_lines_dropped_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
    };
    // Each request logs ~200 bytes; 64 KiB of pipe and 64 KiB of buffer hold about 650 lines.
    for (let sent = 0; (await dropped()) === 0; ) {
      assert.ok(sent < 20_000, "lines were never dropped");
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.call("batch_sum", { numbers: [i] })));
      sent += 200;
    }
    const lost = await dropped();
    assert.ok(lost > 0);
    // The server kept answering while its log was stalled.
    assert.deepEqual(await client.call("batch_sum", { numbers: [2, 3] }), { count: 2, total: 5 });
    let text = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      text += chunk;
    });
    child.stderr.resume();
    await until(() => text.includes("the log reader fell behind"), 10_000, "the dropped-lines report");
    const report = JSON.parse(text.split("\n").find((l) => l.includes("the log reader fell behind")) ?? "{}");
    const total = await dropped();
    assert.ok(report.dropped_lines >= lost && report.dropped_lines <= total, `${report.dropped_lines}: ${lost}..${total}`);
  });
});
