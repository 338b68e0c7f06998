// MCP servers behind smcp (`mcpUpstreamTools`, what `smcp serve --mcp-upstream` runs), tested with real
// peers: the reference server-everything on stdio and on Streamable HTTP, and an SDK McpServer in process.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type SmcpClient, SmcpError, type SmcpServer } from "../src/index.js";
import { type McpGateway, mcpUpstreamTools, parseUpstreamSpec, type UpstreamState } from "../src/mcp.js";
import { SmcpUsageError } from "../src/protocol/errors.js";
import { pair, until } from "./helpers.js";
import { alive, EVERYTHING, EVERYTHING_JS, fixtureUpstream } from "./mcp-helpers.js";
import { type Child, freePort, start } from "./process-helpers.js";

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SmcpError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SmcpError, `expected SmcpError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

const textOf = (result: Record<string, unknown>) => (result.content as { text?: string }[])[0]?.text;

describe("mcpUpstreamTools with server-everything on stdio (sync tools)", () => {
  let gateway: McpGateway;
  let server: SmcpServer;
  let client: SmcpClient;
  const logs: string[] = [];
  before(async () => {
    process.env.SMCP_TEST_SECRET = "must-not-reach-the-upstream";
    gateway = await mcpUpstreamTools(EVERYTHING, { onLog: (line) => logs.push(line) });
    ({ server, client } = pair({ tools: gateway.tools }));
  });
  after(async () => {
    await server.close();
    await gateway.close();
  });

  it("offers each upstream tool under its own name, with its JSON Schemas in list_tools", async () => {
    const { tools } = (await client.call("list_tools")) as { tools: Record<string, unknown>[] };
    const sum = tools.find((tool) => tool.name === "get-sum");
    assert.ok(sum, "get-sum is listed");
    assert.equal(sum.kind, "sync");
    assert.equal(sum.description, "Returns the sum of two numbers");
    const input = sum.input_schema as { properties: Record<string, { type: string }>; required: string[] };
    assert.deepEqual(input.required, ["a", "b"]);
    assert.equal(input.properties.a?.type, "number");
    const output = sum.output_schema as Record<string, unknown>;
    assert.equal(output["x-smcp-mcp-result"], true);
    assert.ok(tools.some((tool) => tool.name === "echo"));
    assert.match(logs.join("\n"), /mcp upstream #1 \(node\): Starting default \(STDIO\) server/);
    assert.equal(gateway.upstreams[0]?.label, "#1 (mcp-servers/everything)");
  });

  it("get-sum: the result is the MCP CallToolResult", async () => {
    const result = await client.call("get-sum", { a: 1, b: 2.5 });
    assert.deepEqual(result, { content: [{ type: "text", text: "The sum of 1 and 2.5 is 3.5." }] });
  });

  it("echo keeps non-ASCII text exact through signing and verification", async () => {
    const message = 'héllo ✓ 😀 \u2028 "quoted" \\ 中文';
    const result = await client.call("echo", { message });
    assert.equal(textOf(result), `Echo: ${message}`);
  });

  it("structuredContent is carried and checked against the upstream's output schema", async () => {
    const result = (await client.call("get-structured-content", { location: "Chicago" })) as {
      structuredContent: { temperature: number; conditions: string; humidity: number };
    };
    assert.equal(typeof result.structuredContent.temperature, "number");
    assert.equal(typeof result.structuredContent.conditions, "string");
    const { tools } = (await client.call("list_tools")) as { tools: { name: string; output_schema: Record<string, unknown> }[] };
    const schema = tools.find((tool) => tool.name === "get-structured-content")?.output_schema as {
      properties: { structuredContent: { required: string[] } };
      required: string[];
    };
    assert.deepEqual(schema.required, ["content", "structuredContent"]);
    assert.ok(schema.properties.structuredContent.required.includes("temperature"));
  });

  it("bad arguments are refused with bad_args before anything is forwarded", async () => {
    const error = await rejectsWith(client.call("get-sum", { a: "one", b: 2 }), "bad_args");
    // The upstream would have answered isError (tool_failed); the issue names the field and the kind.
    assert.deepEqual(error.details, {
      issues: [{ path: ["a"], code: "invalid_type", message: "a: expected number, got string" }],
      more: 0,
    });
    const missing = await rejectsWith(client.call("get-sum", { a: 1 }), "bad_args");
    assert.deepEqual((missing.details as { issues: unknown[] }).issues, [
      { path: ["b"], code: "invalid_type", message: "b: required" },
    ]);
    await rejectsWith(client.call("get-structured-content", { location: "Atlantis" }), "bad_args");
  });

  it("an integer beyond 2^53 is refused (bad_args), never rounded on its way upstream", async () => {
    // get-env's schema accepts any properties: only the bigint check stands between it and rounding.
    const error = await rejectsWith(client.call("get-env", { n: 9007199254740993n as unknown as number }), "bad_args");
    assert.match(error.message, /2\^53/);
  });

  it("the upstream gets this process's environment without SMCP_* (no secret reaches it)", async () => {
    const result = await client.call("get-env", {});
    const text = textOf(result) ?? "";
    assert.match(text, /"PATH"/);
    assert.doesNotMatch(text, /SMCP_TEST_SECRET|must-not-reach-the-upstream/);
  });
});

describe("mcpUpstreamTools: jobs, progress and cancellation", () => {
  it("--mcp-jobs: trigger-long-running-operation is a job whose progress is the upstream's", async () => {
    const gateway = await mcpUpstreamTools(EVERYTHING, { jobs: true });
    const { server, client } = pair({ tools: gateway.tools });
    try {
      const { tools } = (await client.call("list_tools")) as { tools: { name: string; kind: string }[] };
      assert.equal(tools.find((tool) => tool.name === "get-sum")?.kind, "job");
      const seen: unknown[] = [];
      const result = await client.callAndWait(
        "trigger-long-running-operation",
        { duration: 0.9, steps: 3 },
        { pollIntervalMs: 20, maxPollIntervalMs: 40, onProgress: (progress) => seen.push(progress) },
      );
      assert.equal(textOf(result), "Long running operation completed. Duration: 0.9 seconds, Steps: 3.");
      assert.ok(
        seen.some((p) => JSON.stringify(p) === JSON.stringify({ done: 1, total: 3 })),
        `progress 1/3 seen: ${JSON.stringify(seen)}`,
      );
      assert.ok(seen.some((p) => JSON.stringify(p) === JSON.stringify({ done: 2, total: 3 })));
      // A sync-shaped tool is a job too, and its result is the CallToolResult.
      assert.deepEqual(await client.callAndWait("get-sum", { a: 2, b: 3 }, { pollIntervalMs: 10 }), {
        content: [{ type: "text", text: "The sum of 2 and 3 is 5." }],
      });
    } finally {
      await server.close();
      await gateway.close();
    }
  });

  it("cancel_job sends the upstream notifications/cancelled (the upstream's handler sees its signal)", async () => {
    const fixture = fixtureUpstream();
    const gateway = await mcpUpstreamTools(fixture.spec, { jobs: true });
    const { server, client } = pair({ tools: gateway.tools });
    try {
      const { job_id } = (await client.call("wait-for-cancel", {})) as { job_id: string };
      await until(async () => (await client.poll(job_id)).result?.progress !== null, 5000, "the upstream's progress");
      const polled = await client.poll(job_id);
      assert.deepEqual(polled.result?.progress, { done: 1, total: 2, message: "waiting" });
      assert.equal(fixture.events.cancelled, 0);
      const cancelled = fixture.events.nextCancel;
      assert.equal((await client.cancel(job_id)).state, "cancelled");
      await cancelled; // the upstream's own handler saw notifications/cancelled
      assert.equal(fixture.events.cancelled, 1);
      const final = await client.poll(job_id);
      assert.equal(final.status, "error");
      assert.equal(final.result?.code, "cancelled");
    } finally {
      await server.close();
      await gateway.close();
    }
  });

  it("an upstream isError is tool_failed, with the upstream's text in the message and details", async () => {
    const fixture = fixtureUpstream();
    const gateway = await mcpUpstreamTools(fixture.spec);
    const { server, client } = pair({ tools: gateway.tools });
    try {
      const error = await rejectsWith(client.call("fail", { why: "disk full" }), "tool_failed");
      assert.equal(error.message, "failed: disk full", "the tool's own words (SPEC §5)");
      assert.deepEqual(error.details, { content: [{ type: "text", text: "failed: disk full" }] });
    } finally {
      await server.close();
      await gateway.close();
    }
  });
});

describe("mcpUpstreamTools: supervision", () => {
  it("a killed upstream: calls get unavailable (in flight and new), it is restarted, calls work again", async () => {
    const states: UpstreamState[] = [];
    const logs: string[] = [];
    const gateway = await mcpUpstreamTools(EVERYTHING, {
      // A pause long enough that the calls below land while it is down; the test waits on states, not on time.
      restartDelayMs: 1500,
      onState: (state) => states.push(state),
      onLog: (line) => logs.push(line),
    });
    const { server, client } = pair({ tools: gateway.tools });
    const upstream = gateway.upstreams[0];
    assert.ok(upstream);
    let restartedPid: number | null = null;
    try {
      const pid = upstream.pid;
      assert.ok(pid, "the upstream process runs");
      const inFlight = client.call("trigger-long-running-operation", { duration: 30, steps: 1 });
      inFlight.catch(() => undefined);
      process.kill(pid, "SIGKILL");
      await until(() => states.includes("down"), 5000, "the upstream to be seen down");
      const dropped = await rejectsWith(inFlight, "unavailable");
      assert.match(dropped.message, /closed the connection/);
      await rejectsWith(client.call("get-sum", { a: 1, b: 1 }), "unavailable");
      await until(() => upstream.state === "up", 10_000, "the restart");
      restartedPid = upstream.pid;
      assert.ok(restartedPid !== null && restartedPid !== pid, "a new process");
      assert.deepEqual(await client.call("get-sum", { a: 1, b: 1 }), {
        content: [{ type: "text", text: "The sum of 1 and 1 is 2." }],
      });
      assert.match(logs.join("\n"), /connection lost; restarting in 1500 ms/);
      assert.match(logs.join("\n"), /restarted/);
    } finally {
      await gateway.close();
    }
    // close() stops the process for good; calls are then unavailable, and no restart follows.
    await until(() => !alive(restartedPid as number), 5000, "the upstream process to exit");
    assert.equal(upstream.state, "closed");
    assert.equal(upstream.pid, null);
    const closed = await rejectsWith(client.call("get-sum", { a: 1, b: 1 }), "unavailable");
    assert.match(closed.message, /closed/);
    await server.close();
  });

  it("an upstream that does not start is a usage error naming it, with its stderr", async () => {
    await assert.rejects(mcpUpstreamTools({ command: "/nonexistent/mcp-server" }), (error: unknown) => {
      assert.ok(error instanceof SmcpUsageError);
      assert.equal(error.message, "MCP upstream #1 (mcp-server) did not start: command not found");
      return true;
    });
    const states: UpstreamState[] = [];
    await assert.rejects(
      mcpUpstreamTools(
        { command: process.execPath, args: ["-e", "console.error('no config file'); process.exit(3)"] },
        { onState: (state) => states.push(state) },
      ),
      (error: unknown) => {
        assert.ok(error instanceof SmcpUsageError);
        assert.match(error.message, /^MCP upstream #1 \(node\) did not start: .*\(its stderr: no config file\)$/);
        return true;
      },
    );
    assert.deepEqual(states, ["starting", "closed"]);
  });
});

describe("mcpUpstreamTools: names", () => {
  it("the same tool name from two upstreams refuses to start, naming both; both are closed", async () => {
    const states: UpstreamState[] = [];
    await assert.rejects(mcpUpstreamTools([EVERYTHING, EVERYTHING], { onState: (state) => states.push(state) }), (error) => {
      assert.ok(error instanceof SmcpUsageError);
      assert.match(
        error.message,
        /^tool 'echo' is offered by both MCP upstream #1 \(mcp-servers\/everything\) and MCP upstream #2 \(mcp-servers\/everything\)/,
      );
      return true;
    });
    assert.equal(states.filter((state) => state === "closed").length, 2);
  });

  it("a clash with a local tool refuses to start, naming both", async () => {
    const fixture = fixtureUpstream();
    await assert.rejects(
      mcpUpstreamTools(fixture.spec, { reservedNames: ["weather", "fail"] }),
      /^SmcpUsageError: tool 'fail' is offered by both a local tool and MCP upstream fixture; tool names must be unique/,
    );
    await assert.rejects(
      mcpUpstreamTools([fixture.spec, fixture.spec]),
      /tool 'fail' is offered by both MCP upstream fixture and MCP upstream fixture/,
    );
  });
});

describe("mcpUpstreamTools with server-everything on Streamable HTTP", () => {
  let child: Child | undefined;
  after(async () => {
    await child?.stop("SIGKILL");
  });

  async function startHttpEverything(port: number): Promise<Child> {
    const started = await start(process.execPath, [EVERYTHING_JS, "streamableHttp"], { PORT: String(port) });
    await until(
      () =>
        fetch(`http://127.0.0.1:${port}/mcp`, { method: "GET" }).then(
          () => true,
          () => false,
        ),
      10_000,
      "server-everything to listen",
    );
    return started;
  }

  it("calls through an http:// upstream; a restarted upstream (new session) is reconnected", async () => {
    const port = await freePort();
    child = await startHttpEverything(port);
    const states: UpstreamState[] = [];
    const gateway = await mcpUpstreamTools(`http://127.0.0.1:${port}/mcp`, {
      restartDelayMs: 100,
      onState: (state) => states.push(state),
    });
    const { server, client } = pair({ tools: gateway.tools });
    try {
      assert.equal(gateway.upstreams[0]?.label, "#1 (mcp-servers/everything)");
      assert.equal(textOf(await client.call("echo", { message: "über HTTP ✓" })), "Echo: über HTTP ✓");
      await child.stop("SIGKILL");
      await rejectsWith(client.call("get-sum", { a: 1, b: 2 }), "unavailable");
      child = await startHttpEverything(port);
      await until(() => gateway.upstreams[0]?.state === "up" && states.includes("down"), 15_000, "the reconnect");
      assert.equal(textOf(await client.call("get-sum", { a: 1, b: 2 })), "The sum of 1 and 2 is 3.");
    } finally {
      await server.close();
      await gateway.close();
    }
  });
});

describe("examples stay true", () => {
  it("examples/mcp.ts runs: an upstream tool through smcp, an smcp tool through the MCP bridge", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/mcp.ts"], { timeout: 60_000 });
    assert.match(stdout, /^get-sum: The sum of 2 and 3 is 5\.$/m);
    assert.match(stdout, /^weather over MCP: \{"celsius":21\.5,"city":"Lisbon"\}$/m);
  });
});

describe("parseUpstreamSpec", () => {
  it("splits a command line as a shell would, without running one", () => {
    assert.deepEqual(parseUpstreamSpec(`npx -y "@scope/server x" 'a b' c\\ d $HOME_DIR`, { HOME_DIR: "/home/me" }), {
      command: "npx",
      args: ["-y", "@scope/server x", "a b", "c d", "/home/me"],
    });
    assert.deepEqual(parseUpstreamSpec("https://mcp.example.com/mcp"), { url: new URL("https://mcp.example.com/mcp") });
  });

  it("refuses pipes, redirections, ';' and an empty command", () => {
    for (const text of ["server | tee log", "server > out", "a; rm -rf /", "server &", ""]) {
      assert.throws(() => parseUpstreamSpec(text), SmcpUsageError, text);
    }
    assert.throws(() => parseUpstreamSpec("http://user:pw@[bad"), /not a valid URL/);
    assert.throws(
      () => parseUpstreamSpec("http://user:pw@[bad"),
      (error: Error) => !error.message.includes("pw"),
    );
  });
});

describe("gateway errors say what happened (issue 18)", () => {
  it("an upstream's own JSON-RPC -32000 is tool_failed with its message; never a store outage", async () => {
    const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
    const { McpError } = await import("@modelcontextprotocol/sdk/types.js");
    const { InMemoryTransport } = await import("@modelcontextprotocol/sdk/inMemory.js");
    const upstream = new McpServer({ name: "exploding", version: "1" });
    upstream.registerTool("explode", { description: "fails", inputSchema: {} }, async () => {
      throw new McpError(-32000, "database exploded at step 2");
    });
    const outages: boolean[] = [];
    const gateway = await mcpUpstreamTools([
      {
        name: "ex",
        connect: () => {
          const [ours, theirs] = InMemoryTransport.createLinkedPair();
          void upstream.connect(theirs);
          return ours;
        },
      },
    ]);
    const { server: s, client: c } = pair({ tools: gateway.tools, observer: { store: (e) => outages.push(e.healthy) } });
    try {
      const error = await rejectsWith(c.call("explode", {}), "tool_failed");
      assert.match(error.message, /database exploded at step 2/);
      assert.deepEqual(outages, [], "an upstream's failure is not a store outage");
    } finally {
      await s.close();
      await gateway.close();
      await upstream.close();
    }
  });
});
