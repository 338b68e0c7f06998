/**
 * Failures the fuzz suites (test/fuzz-*.test.ts) found, each kept as a
 * listed case. Every entry names the property that found it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { wireLatencies } from "../bench/wire.js";
import {
  CanonicalValueError,
  canonicalize,
  createClient,
  createFetchHandler,
  createServer,
  defineTool,
  demoTools,
  JsonSyntaxError,
  parseLossless,
  SmcpError,
} from "../src/index.js";
import { hasLoneSurrogate } from "../src/protocol/canonical.js";
import { serveHttp } from "../src/server/http-node.js";
import { ToolRegistry } from "../src/tools/registry.js";
import type { ArgsValidator } from "../src/tools/validate.js";
import { postHead, RawConnection } from "./fuzz/raw-http.js";
import { checkAnswer } from "./fuzz/wire.js";
import { CLIENT_ID, CLIENT_SECRET, pair, python, SERVER_ID, SERVER_SECRET } from "./helpers.js";

const keyring = { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } };

const validatorOf = (input: z.ZodType): ArgsValidator => {
  const tool = defineTool({ name: "t", description: "", input, output: z.object({}), handler: () => ({}) });
  return (new ToolRegistry([tool]).entry("t") as { args: ArgsValidator }).args;
};
// check(args, 0) is zod's verdict; check(args, BIG) is the ajv pre-check's when it refuses.
// Above the size that gets every issue (16 KiB), within every accepted schema's validation budget.
const BIG = 20_000;

describe("fuzz regressions", () => {
  // Found by fuzz-parser "canonicalize ... writes what Python writes": canonicalize(2 ** 60)
  // wrote String(2 ** 60) = "1152921504606847000", a different integer from the one the double
  // holds (1152921504606846976, what Python writes for it), silently changing the value on the wire.
  it("canonicalize writes an integer beyond 2^53 exactly (2 ** 60)", () => {
    for (const n of [2 ** 60, -(2 ** 60), 2 ** 53 + 2, 1e20, 123456789012345680000]) {
      const text = canonicalize(n);
      assert.equal(text, BigInt(n).toString());
      assert.equal(BigInt(parseLossless(text).value as bigint | number), BigInt(n));
    }
    assert.equal(canonicalize({ n: 2 ** 60 }), '{"n":1152921504606846976}');
    assert.deepEqual(python<string[]>("canonical", { texts: ["1152921504606846976"] }), ["1152921504606846976"]);
  });

  // Found by fuzz-parser "random documents ... as text": a JS string holding half a surrogate
  // pair escaped and the other half raw ("\ud800" + raw U+DC00) was accepted as one astral
  // character; Python reads two lone surrogates, and SPEC §2 refuses lone surrogates.
  it("a raw lone surrogate in a JS string input is refused, even next to an escaped half", () => {
    for (const text of ['"\\ud83d\ude00"', '"\ud83d\\ude00"', '{"k":"\\ud800\udc00"}', '{"\ud83d\\ude00":1}']) {
      assert.throws(() => parseLossless(text), JsonSyntaxError, JSON.stringify(text));
    }
    // The same character written whole, raw or escaped, is fine.
    assert.equal(parseLossless('"😀"').canonical, '"\\ud83d\\ude00"');
    assert.equal(parseLossless('"\\ud83d\\ude00"').canonical, '"\\ud83d\\ude00"');
  });

  // Found by fuzz-validate "for random zod schemas": z.number().multipleOf(0.1) accepts 0.3
  // (zod allows for decimal rounding), the ajv pre-check refused it (0.3 / 0.1 is not an
  // integer in floating point): a message over 16 KiB got bad_args for valid arguments.
  it("the pre-check leaves multipleOf to zod (0.3 is a multiple of 0.1)", () => {
    const validator = validatorOf(z.strictObject({ x: z.number().multipleOf(0.1), y: z.number().multipleOf(0.5) }));
    for (const args of [
      { x: 0.3, y: 1 },
      { x: 0.7, y: -5e-324 },
    ]) {
      assert.equal(validator.check(args, 0).ok, true);
      assert.equal(validator.check(args, BIG).ok, true);
    }
    assert.equal(validator.check({ x: 0.35, y: 1 }, BIG).ok, false);
  });

  // Found by fuzz-validate "for random zod schemas": a strict schema with an argument named
  // "__proto__": ajv counted the key as an additional property and refused what zod accepts.
  it("the pre-check does not decide for a schema naming __proto__", () => {
    const validator = validatorOf(z.strictObject({ ["__proto__"]: z.array(z.string()) }));
    const args = parseLossless('{"__proto__":[]}').value;
    assert.equal(validator.check(args, BIG).ok, validator.check(args, 0).ok);
  });

  // Found by fuzz-readers "fetch handler body reading": a request body stream that errors
  // (the peer went away mid-body) made the fetch handler reject instead of answering.
  it("the fetch handler answers a body stream that fails with a signed bad_envelope", async () => {
    const server = createServer({ keyring, tools: demoTools });
    try {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"v":'));
          controller.error(new Error("the peer went away"));
        },
      });
      const handle = createFetchHandler(server);
      const request = new Request("http://localhost/mcp", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit);
      const response = await handle(request);
      const checked = checkAnswer(
        { body: new Uint8Array(await response.arrayBuffer()), httpStatus: response.status },
        { markers: [] },
      );
      assert.equal(checked.code, "bad_envelope");
      assert.equal(response.status, 400);
    } finally {
      await server.close();
    }
  });

  // Found by fuzz-readers "node body reader": with a Content-Length shorter than the body, node
  // parsed the rest as a malformed next request and answered it with a bare 400, closing the
  // socket before the signed answer to the (truncated) request was written.
  it("a Content-Length shorter than the body gets the signed answer, then the connection closes", async () => {
    const server = createServer({ keyring, tools: demoTools });
    const running = await serveHttp(server, { port: 0 });
    try {
      const body = '{"v":"mcp/0.1","request_id":"abc"}';
      const connection = new RawConnection(running.origin);
      await connection.opened;
      await connection.write(postHead("/mcp", { "content-length": body.length - 3 }) + body);
      const first = await connection.response(0, 5_000);
      const checked = checkAnswer({ body: first.body, httpStatus: first.status }, { markers: [] });
      assert.equal(checked.code, "bad_envelope");
      await connection.until((_data, closed) => (closed ? true : undefined), 5_000, "close");
    } finally {
      await running.close();
    }
  });

  // Found by mcp-fuzz "gateway: whatever an upstream lists and answers" (CI, seed 675178628):
  // arguments {"\ud800":0} were signed and sent (the canonical form writes a lone surrogate
  // escaped), the server refused the body as SPEC §2 says, and the client reported its unsigned
  // bad_envelope as "the response answers another request". Now nothing that no receiver
  // accepts is signed: the client refuses locally, before sending.
  it("a client refuses to sign arguments holding a lone surrogate; nothing is sent", async () => {
    let sent = 0;
    const client = createClient({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: {
        send: () => {
          sent++;
          throw new Error("must not be reached");
        },
      },
    });
    for (const args of [JSON.parse('{"\\ud800":0}'), { k: "a\udc00" }, { k: ["\ud83d"] }]) {
      await assert.rejects(client.request("echo", args), CanonicalValueError);
    }
    assert.equal(sent, 0);
    // A whole pair, raw or as an emoji, is fine to sign.
    assert.doesNotThrow(() => client.buildEnvelope("echo", { k: "\ud83d\ude00", "😀": 1 }));
  });

  it("hasLoneSurrogate reads escapes left to right (an escaped backslash is not an escape)", () => {
    const cases: [unknown, boolean][] = [
      ["plain", false],
      ["\ud83d\ude00", false],
      ["\\ud800", false], // a backslash, then the text "ud800"
      ["\ud800", true],
      ["\udc00", true],
      ["\\\ud800", true],
      ["\ude00\ud83d", true],
      [{ "\udbff\udfff": "x\ud800" }, true],
    ];
    for (const [value, lone] of cases) assert.equal(hasLoneSurrogate(canonicalize(value)), lone, canonicalize(value));
  });

  it("a tool whose output, message or details hold a lone surrogate gets a signed answer its client reads", async () => {
    const tools = [
      defineTool({
        name: "out",
        description: "",
        input: z.object({}),
        output: z.object({ s: z.string() }),
        handler: () => ({ s: "\ud800" }),
      }),
      defineTool({
        name: "err",
        description: "",
        input: z.object({}),
        output: z.object({}),
        handler: () => {
          // The 512-unit cut splits the pair.
          throw new SmcpError("tool_failed", `${"x".repeat(511)}\ud83d\ude00 and \udc00`, { details: { k: "\ud800" } });
        },
      }),
    ];
    const { server, client } = pair({ tools });
    try {
      const out = await client.request("out", {});
      assert.equal(out.status, "error");
      assert.equal(out.result?.code, "bad_output");
      const err = await client.request("err", {});
      assert.equal(err.result?.code, "tool_failed");
      assert.equal(err.result?.details, null);
      assert.ok(err.error?.isWellFormed());
    } finally {
      await server.close();
    }
  });
  // Found by bench-wire "reads any text without throwing": a mutated time ("!.009000") read as NaN, and a NaN
  // latency sorted anywhere broke the percentiles.
  it("bench/wire.ts: a tcpdump line with an unreadable time is not a packet", () => {
    const w = wireLatencies(
      [
        "1.000000 IP 127.0.0.1.50001 > 127.0.0.1.41234: tcp 428",
        "1.002000 IP 127.0.0.1.41234 > 127.0.0.1.50001: tcp 443",
        "1.004000 IP 127.0.0.1.50002 > 127.0.0.1.41234: tcp 428",
        "!.009000 IP 127.0.0.1.41234 > 127.0.0.1.50002: tcp 443",
      ].join("\n"),
      41234,
    );
    assert.ok(w);
    assert.equal(w.requests, 1);
    assert.equal(w.p99ms.toFixed(3), "2.000");
  });
});
