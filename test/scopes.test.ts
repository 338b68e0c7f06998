/**
 * Per-client authorization (SPEC §9): scopes decide who may call what;
 * `forbidden` comes after the nonce and before the tool is looked up (it
 * says nothing of whether a tool exists); nothing runs and no job is stored;
 * `list_tools` lists only what the client may call. Held to a small
 * reference model of the rules with random scopes and random calls.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import { runCli } from "../src/cli/run.js";
import { serveHttp } from "../src/http.js";
import {
  createClient,
  createServer,
  defineTool,
  inProcessTransport,
  MemoryJobStore,
  SmcpError,
  type SmcpServer,
} from "../src/index.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { runProperty } from "./fuzz/run.js";
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

const servers: SmcpServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

const NAMES = ["weather.today", "weather.week", "billing.refund", "echo", "report"] as const;

function toolsCounting(runs: Map<string, number>) {
  const handler = (name: string) => () => {
    runs.set(name, (runs.get(name) ?? 0) + 1);
    return {};
  };
  const shape = { input: z.strictObject({}), output: z.strictObject({}) };
  return NAMES.map((name) =>
    name === "report"
      ? defineTool({ kind: "job", name, description: `the ${name} tool`, ...shape, handler: handler(name) })
      : defineTool({ name, description: `the ${name} tool`, ...shape, handler: handler(name) }),
  );
}

function world(scopes: Record<string, string[]>) {
  const runs = new Map<string, number>();
  const jobStore = new MemoryJobStore();
  const server = createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: SERVER_SECRET,
      clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET },
    },
    tools: toolsCounting(runs),
    jobStore,
    scopes,
  });
  servers.push(server);
  const client = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport: inProcessTransport(server),
  });
  return { server, client, runs, jobStore };
}

/** The rules, written plainly: a tools: pattern matches the whole name, `*` any run of characters. */
function allows(scopes: string[] | undefined, tool: string): boolean {
  const list = scopes ?? ["tools:*"];
  return list.some((scope) => {
    if (!scope.startsWith("tools:")) return false;
    const pattern = scope.slice("tools:".length);
    const parts = pattern.split("*");
    if (parts.length === 1) return pattern === tool;
    let at = 0;
    if (!tool.startsWith(parts[0] as string)) return false;
    at = (parts[0] as string).length;
    for (const part of parts.slice(1, -1)) {
      const found = tool.indexOf(part, at);
      if (found < 0) return false;
      at = found + part.length;
    }
    const last = parts.at(-1) as string;
    return tool.length - at >= last.length && tool.endsWith(last);
  });
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof SmcpError) return error.code;
    throw error;
  }
}

describe("scopes (SPEC §9)", () => {
  it("forbidden names the scope, comes before the lookup (an unknown tool is forbidden too), runs and stores nothing", async () => {
    const { client, runs, jobStore } = world({ [CLIENT_ID]: ["tools:weather.*"] });
    assert.deepEqual(await client.call("weather.today", {}), {});
    for (const tool of ["billing.refund", "report", "no_such_tool"]) {
      await assert.rejects(client.call(tool, {}), (error: unknown) => {
        assert.ok(error instanceof SmcpError);
        assert.equal(error.code, "forbidden");
        assert.deepEqual(error.details, { scope: `tools:${tool}` });
        return true;
      });
    }
    assert.equal(runs.get("billing.refund"), undefined);
    assert.deepEqual(await jobStore.list({}), [], "no job stored");
    // The protocol's own tools need no scope, and list_tools lists only what this client may call.
    const listed = (await client.call("list_tools", {})) as { tools: { name: string }[] };
    const names = listed.tools.map((t) => t.name).filter((n) => (NAMES as readonly string[]).includes(n));
    assert.deepEqual(names.sort(), ["weather.today", "weather.week"]);
    assert.ok(listed.tools.some((t) => t.name === "poll_job"));
  });

  it("a bad scope is a start-up error naming it and the client", () => {
    assert.throws(
      () => world({ [CLIENT_ID]: ["tool:everything"] }),
      /client 'client-001': scope "tool:everything" is not one of/,
    );
    assert.throws(() => world({ nobody: ["tools:*"] }), /scopes are given for client 'nobody', which has no keys here/);
  });

  it("random scopes and calls agree with the reference model", async (t) => {
    const scope = fc.oneof(
      fc.constantFrom("tools:*", "tools:weather.*", "tools:*.refund", "tools:echo", "tools:re*t", "jobs:all"),
      fc.constantFrom(...NAMES).map((n) => `tools:${n}`),
    );
    await runProperty(
      t,
      fc.record({
        scopes: fc.option(fc.array(scope, { maxLength: 3 }), { nil: undefined }),
        calls: fc.array(fc.constantFrom(...NAMES, "unknown.tool"), { minLength: 1, maxLength: 8 }),
      }),
      async ({ scopes, calls }) => {
        const { client, runs, server } = world(scopes === undefined ? {} : { [CLIENT_ID]: scopes });
        for (const tool of calls) {
          const got = await outcome(client.call(tool, {}));
          const expected = !allows(scopes, tool) ? "forbidden" : tool === "unknown.tool" ? "unknown_tool" : "ok";
          assert.equal(got, expected, `${tool} with ${JSON.stringify(scopes)}`);
        }
        const listed = ((await client.call("list_tools", {})) as { tools: { name: string }[] }).tools.map((x) => x.name);
        for (const name of NAMES) assert.equal(listed.includes(name), allows(scopes, name), `${name} listed`);
        for (const [name, n] of runs) assert.ok(allows(scopes, name) && n > 0);
        await server.close();
      },
      { runs: 100, seconds: 4 },
    );
  });

  it("smcp serve --scope, and smcp call prints the scope that would allow it", async () => {
    const made = world({ [CLIENT_ID]: ["tools:echo"] });
    const running = await serveHttp(made.server, { port: 0 });
    try {
      const io = captureIO();
      assert.equal(await runCli(["call", "billing.refund", "{}", ...connectionFlags(running.url)], io), 1);
      assert.match(io.errText(), /error: forbidden: /);
      assert.match(io.errText(), /hint: .*grant tools:billing\.refund/);
    } finally {
      await running.close();
    }
  });
});
