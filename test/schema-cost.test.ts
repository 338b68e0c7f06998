// Schemas smcp did not write cost a bounded amount (src/tools/schema-cost.ts): a hostile MCP upstream's
// schema whose $refs multiply is left out of the gateway; a tool module's is refused at load; the static
// bound is sound against a reference interpreter on random schemas and instances.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import fc from "fast-check";
import { z } from "zod";
import { defineTool, demoTools, type SmcpClient, type SmcpServer } from "../src/index.js";
import { type McpGateway, mcpUpstreamTools } from "../src/mcp.js";
import type { JsonObject } from "../src/protocol/canonical.js";
import { SmcpUsageError } from "../src/protocol/errors.js";
import { describeTool } from "../src/tools/define.js";
import { protocolTools } from "../src/tools/protocol.js";
import { MAX_SCHEMA_COST, schemaCost } from "../src/tools/schema-cost.js";
import { ArgsValidator } from "../src/tools/validate.js";
import { runProperty } from "./fuzz/run.js";
import { pair } from "./helpers.js";
import { EVERYTHING } from "./mcp-helpers.js";

/** The finding's schema: `levels` $defs, each referencing the next twice, under property `x`. */
function doubling(levels: number): JsonObject {
  const defs: JsonObject = {};
  for (let i = 0; i < levels; i++) defs[`l${i}`] = { allOf: [{ $ref: `#/$defs/l${i + 1}` }, { $ref: `#/$defs/l${i + 1}` }] };
  defs[`l${levels}`] = { type: "object" };
  return { type: "object", $defs: defs, properties: { x: { $ref: "#/$defs/l0" } } };
}

/** An MCP server (the SDK's low-level Server, in process) listing tools with raw JSON Schemas, as any upstream may. */
function rawSchemaUpstream(tools: { name: string; inputSchema: JsonObject; outputSchema?: JsonObject }[]) {
  const connect = (): Transport => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const server = new Server({ name: "raw", version: "1.0.0" }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      const { a, b } = (request.params.arguments ?? {}) as { a: number; b: number };
      return { content: [{ type: "text", text: `${request.params.name}: ${a + b}` }] };
    });
    void server.connect(serverSide);
    return clientSide;
  };
  return { connect, name: "raw" };
}

describe("a hostile upstream schema through a real gateway", () => {
  let gateway: McpGateway;
  let server: SmcpServer;
  let client: SmcpClient;
  const logs: string[] = [];
  const add = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] };
  before(async () => {
    const upstream = rawSchemaUpstream([
      { name: "deep", inputSchema: doubling(30) },
      { name: "deep-output", inputSchema: add, outputSchema: doubling(30) },
      { name: "add", inputSchema: add },
    ]);
    gateway = await mcpUpstreamTools(upstream, { onLog: (line) => logs.push(line) });
    ({ server, client } = pair({ tools: gateway.tools }));
  });
  after(async () => {
    await server.close();
    await gateway.close();
  });

  it("leaves out the tool whose input or output schema's refs multiply, says why, and serves the rest", async () => {
    const { tools } = (await client.call("list_tools")) as { tools: { name: string }[] };
    const names = tools.map((tool) => tool.name);
    assert.ok(names.includes("add"));
    assert.ok(!names.includes("deep"), "the tool with the doubling input schema is left out");
    assert.ok(!names.includes("deep-output"), "the tool with the doubling output schema is left out");
    const text = logs.join("\n");
    assert.match(text, /tool 'deep' left out: its input schema is too costly to validate: .*more than 64 schema nodes/);
    assert.match(text, /tool 'deep-output' left out: its output schema is too costly to validate/);
    assert.deepEqual(await client.call("add", { a: 2, b: 3 }), { content: [{ type: "text", text: "add: 5" }] });
  });
});

describe("real schemas are far below the limit", () => {
  it("server-everything's tools are all served, and every schema costs at most a quarter of the limit", async () => {
    const logs: string[] = [];
    const gateway = await mcpUpstreamTools(EVERYTHING, { onLog: (line) => logs.push(line) });
    try {
      assert.doesNotMatch(logs.join("\n"), /too costly/);
      assert.ok(gateway.tools.length >= 10);
      for (const tool of [...gateway.tools, ...demoTools, ...protocolTools]) {
        const { input_schema, output_schema } = describeTool(tool);
        for (const schema of [input_schema, output_schema]) {
          const cost = schemaCost(schema);
          assert.ok(cost.ok && cost.bound <= MAX_SCHEMA_COST / 4, `${tool.name}: ${JSON.stringify(cost)}`);
        }
      }
    } finally {
      await gateway.close();
    }
  });
});

describe("schemaCost", () => {
  const refused = (schema: unknown, reason: RegExp) => {
    const cost = schemaCost(schema);
    assert.equal(cost.ok, false, JSON.stringify(cost));
    assert.match((cost as { reason: string }).reason, reason);
  };

  it("a DAG of same-instance refs that doubles per level: 2^(levels+2) - 2 applications, refused above the limit", () => {
    // Level i: itself, its two $ref nodes, twice level i+1; the last level 1; the property's $ref 1.
    assert.deepEqual(schemaCost(doubling(3)), { ok: true, bound: 30 });
    assert.deepEqual(schemaCost(doubling(4)), { ok: true, bound: 62 });
    refused(doubling(5), /more than 64 schema nodes \(at nesting level 1\)/);
    refused(doubling(30), /more than 64 schema nodes/);
    // anyOf and oneOf count like allOf: the bound is for any order of evaluation and any outcome.
    refused(JSON.parse(JSON.stringify(doubling(30)).replaceAll("allOf", "anyOf")), /more than 64/);
  });

  it("recursion that consumes the instance stays linear: a binary tree, a linked list, nested arrays", () => {
    const tree = { type: "object", properties: { v: { type: "number" }, left: { $ref: "#" }, right: { $ref: "#" } } };
    assert.deepEqual(schemaCost(tree), { ok: true, bound: 2 });
    const list = {
      $ref: "#/$defs/node",
      $defs: {
        node: {
          type: "object",
          properties: { value: {}, next: { $ref: "#/$defs/node" }, children: { type: "array", items: { $ref: "#/$defs/node" } } },
        },
      },
    };
    assert.deepEqual(schemaCost(list), { ok: true, bound: 2 });
    assert.deepEqual(schemaCost({ anyOf: [{ type: "number" }, { type: "array", items: { $ref: "#" } }] }), {
      ok: true,
      bound: 4,
    });
  });

  it("a wide object stays exact: 100 properties, each an object of 100, and a definition referenced 100 times", () => {
    const wide = (n: number, leaf: () => unknown) => ({
      type: "object",
      properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, leaf()])),
    });
    assert.deepEqual(schemaCost(wide(100, () => wide(100, () => ({ type: "integer" })))), { ok: true, bound: 1 });
    const referenced = {
      ...wide(100, () => ({ $ref: "#/$defs/leaf" })),
      $defs: { leaf: wide(100, () => ({ type: "integer" })) },
    };
    assert.deepEqual(schemaCost(referenced), { ok: true, bound: 2 });
  });

  it("recursion through two branches applied to the same child doubles per level: refused", () => {
    refused(
      { $defs: { a: { anyOf: [{ items: { $ref: "#/$defs/a" } }, { items: { $ref: "#/$defs/a" } }] } }, $ref: "#/$defs/a" },
      /more than 64/,
    );
    refused({ allOf: [{ properties: { k: { $ref: "#" } } }, { additionalProperties: { $ref: "#" } }] }, /more than 64/);
  });

  it("a cycle of same-instance edges never ends: refused", () => {
    refused({ $defs: { a: { allOf: [{ $ref: "#/$defs/a" }] } }, $ref: "#/$defs/a" }, /cycle/);
    refused({ $defs: { a: { not: { $ref: "#/$defs/b" } }, b: { if: { $ref: "#/$defs/a" } } }, $ref: "#/$defs/a" }, /cycle/);
    refused({ $ref: "#" }, /cycle/);
  });

  it("refs it cannot follow, and pairwise uniqueItems, are refused", () => {
    refused({ $ref: "https://example.com/schema.json" }, /is not local/);
    refused({ properties: { a: { $ref: "#/$defs/missing" } } }, /does not resolve/);
    refused({ $dynamicRef: "#meta" }, /\$dynamicRef/);
    refused({ type: "array", uniqueItems: true }, /uniqueItems/);
    assert.equal(schemaCost({ type: "array", uniqueItems: true, items: { type: "string" } }).ok, true);
    assert.equal(schemaCost({ type: "array", uniqueItems: true, maxItems: 10 }).ok, true);
    refused([], /not a JSON Schema/);
  });

  it("follows JSON pointers (escaped), anchors and draft-07 definitions", () => {
    assert.deepEqual(schemaCost({ definitions: { "a/b~": { type: "string" } }, $ref: "#/definitions/a~1b~0" }), {
      ok: true,
      bound: 2,
    });
    assert.deepEqual(schemaCost({ $defs: { s: { $anchor: "str", type: "string" } }, items: { $ref: "#str" } }), {
      ok: true,
      bound: 2,
    });
  });

  it("defineTool refuses such a JSON Schema at load, naming the tool and the reason", () => {
    assert.throws(
      () =>
        defineTool({
          name: "hostile",
          description: "x",
          input: z.unknown(),
          output: z.unknown(),
          jsonSchema: { input: doubling(30) },
          handler: () => ({}),
        }),
      (error: unknown) => {
        assert.ok(error instanceof SmcpUsageError);
        assert.match(
          error.message,
          /^tool 'hostile': its input JSON Schema is too costly to validate: .*more than 64 schema nodes/,
        );
        return true;
      },
    );
  });
});

// ---- generative: random $defs graphs; the bound is sound and ajv completes -------------------------------------

type Schema = JsonObject | boolean;
const DEFS = 4;
const ref = fc.integer({ min: 0, max: DEFS - 1 }).map((i): Schema => ({ $ref: `#/$defs/d${i}` }));
const schemaArb: fc.Arbitrary<Schema> = fc.letrec<{ s: Schema }>((tie) => ({
  s: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom<Schema>(true, false, { type: "number" }, { type: "object" }, { type: "string" }),
    ref,
    fc.array(tie("s"), { minLength: 1, maxLength: 3 }).map((list): Schema => ({ allOf: list })),
    fc.array(tie("s"), { minLength: 1, maxLength: 3 }).map((list): Schema => ({ anyOf: list })),
    tie("s").map((s): Schema => ({ not: s })),
    tie("s").map((s): Schema => ({ type: "array", items: s })),
    fc.tuple(tie("s"), tie("s")).map(([a, b]): Schema => ({ prefixItems: [a], items: b })),
    fc.record({ a: tie("s"), b: tie("s") }).map((p): Schema => ({ properties: p })),
    fc.tuple(tie("s"), tie("s")).map(([a, rest]): Schema => ({ properties: { a }, additionalProperties: rest })),
  ),
})).s as fc.Arbitrary<Schema>;
const documentArb = fc
  .tuple(schemaArb, fc.array(schemaArb, { minLength: DEFS, maxLength: DEFS }))
  .map(([root, defs]): JsonObject => {
    const $defs: JsonObject = {};
    defs.forEach((def, i) => {
      $defs[`d${i}`] = def;
    });
    return typeof root === "boolean" ? { allOf: [root], $defs } : { ...root, $defs };
  });
type Instance = number | string | Instance[] | { [key: string]: Instance };
const instanceArb: fc.Arbitrary<Instance> = fc.letrec<{ v: Instance }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.integer({ min: -3, max: 3 }),
    fc.constant("s"),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("a", "b", "c"), tie("v"), { maxKeys: 3 }),
  ),
})).v;

/** Instance nodes: every value, an object's or array's included. */
function nodes(value: Instance): number {
  if (Array.isArray(value)) return 1 + value.reduce((sum: number, item) => sum + nodes(item), 0);
  if (typeof value === "object") return 1 + Object.values(value).reduce((sum: number, item) => sum + nodes(item), 0);
  return 1;
}

/**
 * The reference interpreter: applies every subschema that can apply (all branches of
 * allOf/anyOf/not, whatever their outcome), counting applications; stops past `budget`.
 */
function applications(document: JsonObject, instance: Instance, budget: number): number {
  let count = 0;
  const apply = (schema: unknown, value: Instance): void => {
    if (++count > budget || typeof schema !== "object" || schema === null) return;
    const s = schema as Record<string, unknown>;
    if (typeof s.$ref === "string") {
      const target = s.$ref === "#" ? document : (document.$defs as JsonObject)[s.$ref.slice("#/$defs/".length)];
      apply(target, value);
    }
    for (const key of ["allOf", "anyOf"]) for (const sub of (s[key] as unknown[] | undefined) ?? []) apply(sub, value);
    if (s.not !== undefined) apply(s.not, value);
    if (Array.isArray(value)) {
      const prefix = (s.prefixItems as unknown[] | undefined) ?? [];
      value.forEach((item, i) => {
        if (i < prefix.length) apply(prefix[i], item);
        else if (s.items !== undefined) apply(s.items, item);
      });
    } else if (typeof value === "object") {
      const properties = (s.properties as Record<string, unknown> | undefined) ?? {};
      for (const [key, item] of Object.entries(value)) {
        if (Object.hasOwn(properties, key)) apply(properties[key], item);
        else if (s.additionalProperties !== undefined) apply(s.additionalProperties, item);
      }
    }
  };
  apply(document, instance);
  return count;
}

describe("schemaCost on random schemas (generative)", () => {
  it("terminates quickly without throwing; an accepted schema's bound holds and ajv validates within it", async (t) => {
    let accepted = 0;
    await runProperty(
      t,
      fc.tuple(documentArb, fc.array(instanceArb, { minLength: 1, maxLength: 4 })),
      ([document, instances]) => {
        const started = performance.now();
        const cost = schemaCost(document);
        const ms = performance.now() - started;
        assert.ok(ms < 250, `the analysis took ${ms.toFixed(1)} ms`);
        if (!cost.ok) return;
        accepted++;
        assert.ok(cost.bound >= 1 && cost.bound <= MAX_SCHEMA_COST);
        const validator = new ArgsValidator(z.unknown(), document, { authoritative: true });
        for (const instance of instances) {
          const allowed = cost.bound * nodes(instance);
          const counted = applications(document, instance, allowed);
          assert.ok(counted <= allowed, `${counted} applications > bound ${cost.bound} × ${nodes(instance)} nodes`);
          validator.check(instance); // completes: any verdict, no exception
        }
      },
      { runs: 300, seconds: 8, minRuns: 50 },
    );
    t.diagnostic(`${accepted} schemas accepted`);
    assert.ok(accepted >= 10, "enough random schemas are accepted to test the bound");
  });
});

describe("validation budget per message (bound × size)", () => {
  it("a costly-but-accepted schema refuses a message too large for its bound before validating; a cheap one takes it", async () => {
    const { ArgsValidator } = await import("../src/tools/validate.js");
    const { MAX_VALIDATION_STEPS } = await import("../src/tools/schema-cost.js");
    const { z } = await import("zod");
    // Bound 3 (three levels of two refs each, as the finding's schema but short enough to be accepted).
    const levels = 3;
    const $defs: Record<string, unknown> = {};
    for (let i = 0; i < levels; i++) $defs[`l${i}`] = { allOf: [{ $ref: `#/$defs/l${i + 1}` }, { $ref: `#/$defs/l${i + 1}` }] };
    $defs[`l${levels}`] = { type: "object" };
    const costly = new ArgsValidator(z.object({}).passthrough(), { $ref: "#/$defs/l0", $defs } as never, { authoritative: true });
    const big = Math.ceil((2 * MAX_VALIDATION_STEPS) / 8) + 1024;
    const refused = costly.check({}, big);
    assert.equal(refused.ok, false);
    assert.match(JSON.stringify(refused), /too large for this tool's schema/);
    assert.equal(costly.check({}, 100).ok, true);
    const cheap = new ArgsValidator(z.object({}).passthrough(), { type: "object" }, { authoritative: true });
    assert.equal(cheap.check({}, 1024 * 1024).ok, true);
  });
});
