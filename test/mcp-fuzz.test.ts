// Generative tests for everything the MCP bridges read from outside: an upstream's tool list and results
// (gateway), a server's list_tools and answers (smcp mcp), and the JSON copy between them. Whatever comes
// in, the outcome is bounded, well-formed and one of the documented answers; nothing throws past them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { CallToolResultSchema, ListToolsResultSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import fc from "fast-check";
import { canonicalize, createClient, parseLossless, SmcpError, type Transport } from "../src/index.js";
import { outsideJson } from "../src/mcp/json.js";
import { createMcpBridge, mcpUpstreamTools } from "../src/mcp.js";
import { SmcpUsageError } from "../src/protocol/errors.js";
import { type Key, toKeys } from "../src/protocol/keys.js";
import { signResponse } from "../src/protocol/sign.js";
import { CLIENT_ID, CLIENT_SECRET, pair, SERVER_ID, SERVER_SECRET } from "./helpers.js";
import { ScriptedTransport } from "./mcp-helpers.js";

/** Strings with any UTF-16 unit, lone surrogates and control characters included. */
const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const json = fc.jsonValue({ maxDepth: 4 });
/** JSON values with odd strings (as JSON.parse would give them). */
const oddJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(anyString, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null)),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(anyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

const schema = fc.oneof(
  fc.constant({ type: "object" }),
  fc.record(
    {
      type: fc.constant("object"),
      properties: fc.dictionary(
        fc.oneof(fc.constantFrom("a", "b", "name"), anyString),
        fc.oneof(
          fc.record({ type: fc.constantFrom("string", "number", "integer", "boolean", "array", "object", "null") }),
          fc.record({ enum: fc.array(json, { maxLength: 3 }) }),
          oddJson,
        ),
        { maxKeys: 3 },
      ),
      required: fc.array(fc.oneof(fc.constantFrom("a", "b"), anyString), { maxLength: 2 }),
      additionalProperties: fc.boolean(),
    },
    { requiredKeys: ["type"] },
  ),
  oddJson,
);
const tool = fc.oneof(
  fc.record(
    {
      name: fc.oneof(
        fc.stringMatching(/^[a-z][a-z_.-]{0,8}$/),
        anyString,
        fc.constantFrom("list_tools", "poll_job", "x".repeat(65)),
      ),
      title: anyString,
      description: anyString,
      inputSchema: schema,
      outputSchema: schema,
    },
    { requiredKeys: ["name", "inputSchema"] },
  ),
  oddJson,
);
const contentBlock = fc.oneof(
  fc.record({ type: fc.constant("text"), text: anyString }),
  fc.record({ type: fc.constant("image"), data: fc.base64String({ maxLength: 16 }), mimeType: fc.constant("image/png") }),
  oddJson,
);
const callResult = fc.oneof(
  fc.record(
    {
      content: fc.array(contentBlock, { maxLength: 3 }),
      structuredContent: fc.oneof(fc.dictionary(anyString, oddJson, { maxKeys: 3 }), oddJson),
      isError: fc.boolean(),
    },
    { requiredKeys: [] },
  ),
  oddJson,
);

/** The value with every string and key made well-formed: what outsideJson must copy. */
function wellFormed(value: unknown): unknown {
  if (typeof value === "string") return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toWellFormed(), wellFormed(v)]));
  }
  return value;
}

describe("outsideJson (what an MCP peer sent, made fit for a signed answer)", () => {
  it("any JSON value: a well-formed copy that a client's lossless parser accepts, or bad_output", () => {
    fc.assert(
      fc.property(oddJson, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 400 }), (value, maxDepth, maxChars) => {
        let copy: unknown;
        try {
          copy = outsideJson(value, { maxDepth, maxChars });
        } catch (error) {
          assert.ok(error instanceof SmcpError && error.code === "bad_output", String(error));
          return;
        }
        const text = canonicalize(copy);
        // Signed answers are read back by a parser that refuses lone surrogates: the copy never has one.
        assert.equal(canonicalize(parseLossless(text).value), text);
        assert.ok(JSON.stringify(copy).length <= maxChars + 64, "bounded");
        assert.equal(JSON.stringify(copy), JSON.stringify(wellFormed(value)));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses nesting past the limit and overflowed numbers, in linear time", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.throws(() => outsideJson(deep, { maxDepth: 60, maxChars: 1e9 }), /nested deeper than 60 levels/);
    assert.throws(() => outsideJson({ n: JSON.parse("1e400") }, { maxDepth: 60, maxChars: 1e9 }), /number JSON cannot carry/);
    const wide = Array.from({ length: 200_000 }, () => "x".repeat(10));
    assert.throws(() => outsideJson(wide, { maxDepth: 60, maxChars: 1_000_000 }), /exceeds 1000000 characters/);
    const proto = JSON.parse('{"__proto__":{"polluted":true}}') as object;
    const copy = outsideJson(proto, { maxDepth: 4, maxChars: 100 }) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.deepEqual(Object.keys(copy), ["__proto__"]);
  });
});

describe("gateway: whatever an upstream lists and answers", () => {
  it("starts with the tools it can take (or refuses with a usage error); every call is a signed, documented answer", async () => {
    const codes = new Set(["bad_args", "tool_failed", "bad_output", "unknown_tool", "unavailable"]);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.record({ tools: fc.array(tool, { maxLength: 6 }) }), oddJson),
        callResult,
        oddJson,
        async (listed, result, args) => {
          const logs: string[] = [];
          let gateway: Awaited<ReturnType<typeof mcpUpstreamTools>>;
          try {
            gateway = await mcpUpstreamTools(
              { connect: () => new ScriptedTransport((method) => (method === "tools/list" ? listed : result)) },
              { onLog: (line) => logs.push(line), startTimeoutMs: 300, timeoutMs: 300 },
            );
          } catch (error) {
            assert.ok(error instanceof SmcpUsageError, String(error));
            return;
          }
          for (const line of logs) {
            // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
            assert.doesNotMatch(line, /[\u0000-\u001f]/, "log lines are one clean line");
          }
          const { server, client } = pair({ tools: gateway.tools });
          try {
            const { tools } = (await client.call("list_tools")) as { tools: { name: string }[] };
            for (const mcpTool of gateway.tools) {
              assert.ok(tools.some((t) => t.name === mcpTool.name));
              // Arguments a client can send: a lone surrogate is refused before signing (see fuzz-regressions).
              const callArgs = typeof args === "object" && args !== null && !Array.isArray(args) ? wellFormed(args) : {};
              const response = await client.request(mcpTool.name, callArgs as Record<string, never>); // verified
              if (response.ok) {
                // The CallToolResult, nothing else: content blocks (objects), structuredContent when given.
                const answer = response.result as Record<string, unknown>;
                assert.ok(Object.keys(answer).every((key) => key === "content" || key === "structuredContent"));
                assert.ok(Array.isArray(answer.content));
                for (const block of answer.content as unknown[]) assert.equal(typeof block, "object");
              } else {
                assert.ok(codes.has(String(response.result?.code)), String(response.error));
              }
            }
          } finally {
            await server.close();
            await gateway.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a protocol tool's name from an upstream refuses to start, naming both", async () => {
    await assert.rejects(
      mcpUpstreamTools({
        connect: () => new ScriptedTransport(() => ({ tools: [{ name: "list_tools", inputSchema: { type: "object" } }] })),
      }),
      /^SmcpUsageError: tool 'list_tools' is offered by both smcp's protocol tools and MCP upstream #1/,
    );
  });
});

describe("smcp mcp: whatever a (verified) server answers", () => {
  const serverKey = toKeys(SERVER_SECRET, "test server")[0] as Key;

  /** A transport that answers every request with a correctly signed response built by `answer`. */
  function signedTransport(answer: (tool: string) => { status: string; result: unknown; error: string | null }): Transport {
    return {
      async send(body) {
        const request = JSON.parse(body) as { request_id: string; tool: string };
        const { status, result, error } = answer(request.tool);
        const fields = {
          request_id: request.request_id,
          ts_ms: Date.now(),
          ok: status !== "error",
          server_id: SERVER_ID,
          status,
          result,
          error,
        };
        return { body: signResponse(fields as Parameters<typeof signResponse>[0], serverKey).body, status: 200 };
      },
    };
  }

  const listedTool = fc.oneof(
    fc.record({
      name: fc.oneof(fc.stringMatching(/^[a-z][a-z_]{0,6}$/), anyString, fc.constantFrom("poll_job", "list_tools")),
      description: anyString,
      kind: fc.constantFrom("sync", "job"),
      input_schema: schema,
      output_schema: fc.oneof(schema, fc.constant({ type: "object", "x-smcp-mcp-result": true, required: ["content"] })),
    }),
    oddJson,
  );
  const answer = fc.record({
    status: fc.constantFrom("ok", "accepted", "done", "error", "running"),
    result: fc.oneof(fc.dictionary(anyString, oddJson, { maxKeys: 3 }), fc.constant({ job_id: "j-1" }), callResult),
    error: fc.oneof(fc.constant(null), anyString, fc.constant("bad_args: no")),
  });

  it("tools/list is a valid MCP list or an MCP error; tools/call is always a valid CallToolResult", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.record({ tools: fc.array(listedTool, { maxLength: 6 }) }), fc.dictionary(anyString, oddJson)),
        answer,
        answer,
        fc.oneof(fc.stringMatching(/^[a-z][a-z_]{0,6}$/), anyString),
        fc.dictionary(anyString, oddJson, { maxKeys: 3 }),
        async (listing, first, later, name, args) => {
          const smcp = createClient({
            clientId: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            serverId: SERVER_ID,
            serverSecret: SERVER_SECRET,
            transport: signedTransport((tool) => {
              if (tool === "list_tools") return { status: "ok", result: listing, error: null };
              // A polled job ends with `later` (an "accepted" there would not be a job's state).
              if (tool === "poll_job") return { ...later, status: later.status === "accepted" ? "done" : later.status };
              if (tool === "cancel_job")
                return { status: "ok", result: { job_id: "j-1", state: "cancelled", cancelled: true }, error: null };
              return first;
            }),
          });
          const bridge = createMcpBridge({ client: smcp, wait: { pollIntervalMs: 1, maxPollIntervalMs: 1 } });
          const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
          await bridge.connect(serverSide);
          const host = new Client({ name: "fuzz-host", version: "0" });
          await host.connect(clientSide);
          try {
            try {
              const listed = await host.listTools();
              assert.ok(ListToolsResultSchema.safeParse(listed).success);
              for (const t of listed.tools) assert.ok(!["poll_job", "cancel_job", "list_jobs", "list_tools"].includes(t.name));
            } catch (error) {
              assert.ok(error instanceof McpError, String(error));
            }
            // A "running" poll forever would never end: give the wait a deadline the way a host would, by cancelling.
            const controller = new AbortController();
            const deadline = setTimeout(() => controller.abort(), 500);
            try {
              const called = await host.callTool({ name, arguments: args }, CallToolResultSchema, { signal: controller.signal });
              assert.ok(CallToolResultSchema.safeParse(called).success);
              if (called.isError) assert.match((called.content as { text: string }[])[0]?.text ?? "", /^[a-z_]+: /);
            } catch (error) {
              // Only the host's own cancel may end a call without a result.
              assert.ok(controller.signal.aborted, String(error));
            } finally {
              clearTimeout(deadline);
            }
          } finally {
            await host.close();
            await bridge.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
