import assert from "node:assert/strict";
import { createHmac, verify as nodeVerify, randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  callerKeys,
  createClient,
  createServer,
  demoTools,
  type HandleResult,
  hasCanonicalS,
  inProcessTransport,
  jwkToKeyString,
  type Key,
  Keyring,
  MemoryNonceStore,
  parseKey,
  parseLossless,
  SmcpError,
  SmcpUsageError,
  signMessage,
  toKeys,
  verifyCanonical,
} from "../src/index.js";
import { generateEd25519, publicKeyOf } from "../src/protocol/keys.js";
import { signResponse } from "../src/protocol/sign.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  ED_CLIENT_ID,
  ED_CLIENT_PUBLIC,
  ED_CLIENT_SECRET,
  ED_SERVER_PUBLIC,
  ED_SERVER_SECRET,
  mixedPair,
  SERVER_ID,
  SERVER_SECRET,
  spyTool,
} from "./helpers.js";

const key = (text: string) => parseKey(text, "test") as Key;
const hmacServer = key(SERVER_SECRET);
const edServer = key(ED_SERVER_PUBLIC);
const edClient = key(ED_CLIENT_SECRET);
const hmacClient = key(CLIENT_SECRET);
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

const toLE = (n: bigint) => {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
const fromLE = (b: Uint8Array) => b.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);

/** The usage error thrown by `fn`; fails when it throws nothing or something else. */
function usageError(fn: () => unknown): SmcpUsageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SmcpUsageError, String(error));
    return error;
  }
  assert.fail("expected an SmcpUsageError");
}

describe("Ed25519 key strings and JWKs (SPEC §7)", () => {
  it("a generated pair parses; the secret signs, the public key verifies, and only the secret's public half is published", () => {
    const pair = generateEd25519();
    assert.match(pair.secret, /^ed25519-secret:[A-Za-z0-9_-]{43}$/);
    assert.match(pair.public, /^ed25519:[A-Za-z0-9_-]{43}$/);
    assert.equal(publicKeyOf(pair.secret, "x"), pair.public);
    const signer = key(pair.secret);
    const verifier = key(pair.public);
    assert.equal(signer.alg, "ed25519");
    assert.ok(signer.alg === "ed25519" && signer.privateKey !== undefined);
    assert.ok(verifier.alg === "ed25519" && verifier.privateKey === undefined);
    const signed = signMessage({ a: 1 }, signer);
    assert.match(signed.message.signature, /^[0-9a-f]{128}$/);
    assert.equal(verifyCanonical([verifier], '{"a":1}', signed.message.signature), verifier);
    assert.throws(() => signMessage({ a: 1 }, verifier), /public key cannot sign/);
  });

  it("refuses malformed key strings strictly, naming the fix and never quoting the key", () => {
    const seed = ED_CLIENT_SECRET.slice("ed25519-secret:".length);
    // The last of 43 characters carries 2 spare bits: 'A' -> 'B' keeps the bytes' length but is not canonical.
    const last = seed.at(-1) as string;
    const sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
      ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(last) ^ 1) as number
    ] as string;
    const bad = [
      `ed25519-secret:${seed}=`, // padding
      `ed25519-secret:${seed.slice(0, 42)}`, // short
      `ed25519-secret:${seed}A`, // long
      `ed25519-secret:${seed.slice(0, 42)}+`, // standard base64
      `ed25519-secret:${seed.slice(0, 42)}${sibling}`, // non-canonical last character
      "ed25519-secret:",
      `ed25519:${seed}=`,
      `ed25519:${seed.slice(0, 40)}`,
      `ED25519:${seed}`, // looks meant as a key: not quietly an HMAC secret
      `ed25519-secrt:${seed}`,
      `ed25519_secret:${seed}`,
      `Ed25519-public:${seed}`,
    ];
    for (const text of bad) {
      const error = usageError(() => parseKey(text, "client 'c' secret #1"));
      assert.match(error.message, /^client 'c' secret #1: .*(smcp keygen --alg ed25519)/, text);
      assert.ok(!error.message.includes(seed.slice(0, 20)), `no key text in: ${error.message}`);
    }
    // Any other text is an HMAC secret, as before.
    assert.equal(key("ed25519 is a fine word to start a secret").alg, "hmac-sha256");
    assert.equal(key("0123456789abcdef").alg, "hmac-sha256");
    assert.match(usageError(() => parseKey("short", "the server secret #1")).message, /is 5 bytes; use at least 16/);
  });

  it("reads RFC 8037 JWKs (public and private) and refuses the rest", () => {
    const seed = ED_CLIENT_SECRET.slice("ed25519-secret:".length);
    const x = ED_CLIENT_PUBLIC.slice("ed25519:".length);
    assert.equal(jwkToKeyString({ kty: "OKP", crv: "Ed25519", x }, "k"), ED_CLIENT_PUBLIC);
    assert.equal(jwkToKeyString({ kty: "OKP", crv: "Ed25519", x, d: seed, kid: "any", use: "sig" }, "k"), ED_CLIENT_SECRET);
    const serverX = ED_SERVER_PUBLIC.slice("ed25519:".length);
    const cases: [unknown, RegExp][] = [
      [{ kty: "OKP", crv: "Ed25519", x: serverX, d: seed }, /"x" is not the public key of its "d"/],
      [{ kty: "OKP", crv: "Ed25519", d: seed }, /no "x"/],
      [{ kty: "OKP", crv: "X25519", x }, /only Ed25519 JWKs/],
      [{ kty: "oct", k: "c2VjcmV0" }, /only Ed25519 JWKs.*plain string/],
      [{ kty: "OKP", crv: "Ed25519", x: `${x}=` }, /43 base64url characters/],
      [{ kty: "OKP", crv: "Ed25519", x, d: 7 }, /"d" must be a base64url string/],
      [[x], /must be a JSON object/],
    ];
    for (const [jwk, message] of cases) {
      const error = usageError(() => jwkToKeyString(jwk, "k"));
      assert.match(error.message, message);
      assert.ok(!error.message.includes(seed.slice(0, 20)), "no secret in the message");
    }
  });

  it("hasCanonicalS: S below L only (boundaries), and S + L is refused even though the equation holds for it", () => {
    const withS = (s: bigint) => Buffer.concat([Buffer.alloc(32, 7), toLE(s)]);
    assert.equal(hasCanonicalS(withS(0n)), true);
    assert.equal(hasCanonicalS(withS(L - 1n)), true);
    assert.equal(hasCanonicalS(withS(L)), false);
    assert.equal(hasCanonicalS(withS(L + 1n)), false);
    assert.equal(hasCanonicalS(withS((1n << 256n) - 1n)), false);
    assert.equal(hasCanonicalS(Buffer.alloc(63)), false);
    const canonical = '{"a":1}';
    const signature = Buffer.from(signMessage({ a: 1 }, edClient).message.signature, "hex");
    const malleated = Buffer.concat([signature.subarray(0, 32), toLE(fromLE(signature.subarray(32)) + L)]);
    const publicKey = (key(ED_CLIENT_PUBLIC) as Key & { alg: "ed25519" }).publicKey;
    // What Node (OpenSSL 3) does by itself: refuses it too. The explicit check does not depend on that.
    assert.equal(nodeVerify(null, Buffer.from(canonical), publicKey, malleated), false);
    assert.equal(verifyCanonical([key(ED_CLIENT_PUBLIC)], canonical, malleated.toString("hex")), undefined);
    assert.ok(verifyCanonical([key(ED_CLIENT_PUBLIC)], canonical, signature.toString("hex")));
  });

  it("each key takes only its own algorithm's signature form", () => {
    const canonical = '{"a":1}';
    const ed = signMessage({ a: 1 }, edClient).message.signature;
    const hm = signMessage({ a: 1 }, hmacClient).message.signature;
    assert.equal(verifyCanonical([hmacClient], canonical, ed), undefined);
    assert.equal(verifyCanonical([key(ED_CLIENT_PUBLIC)], canonical, hm), undefined);
    // A 64-hex HMAC made with the public key (its text, or its raw bytes) as the secret.
    for (const secret of [ED_CLIENT_PUBLIC, Buffer.from(ED_CLIENT_PUBLIC.slice(8), "base64url")]) {
      const forged = createHmac("sha256", secret).update(canonical).digest("hex");
      assert.equal(verifyCanonical([key(ED_CLIENT_PUBLIC)], canonical, forged), undefined);
    }
    // Rotation: any live key of a record verifies.
    const other = key(generateEd25519().public);
    assert.ok(verifyCanonical([other, key(ED_CLIENT_PUBLIC)], canonical, ed));
  });
});

describe("a keyring of both algorithms (SPEC §7)", () => {
  const ring = (serverSecrets: unknown, clients: Record<string, unknown>) =>
    new Keyring({ serverId: "s", serverSecrets: serverSecrets as string, clients: clients as Record<string, string> });

  it("refuses at start, in one line naming the fix, what it could not run safely", () => {
    const cases: [unknown, Record<string, unknown>, RegExp][] = [
      [
        SERVER_SECRET,
        { edge: ED_CLIENT_PUBLIC },
        /^client 'edge' has an Ed25519 key but the server has no Ed25519 key to answer it with; add one .*smcp keygen --alg ed25519/,
      ],
      [ED_SERVER_SECRET, { c: CLIENT_SECRET }, /^client 'c' has an HMAC key but the server has no HMAC key .*smcp keygen/],
      [
        [SERVER_SECRET, ED_SERVER_SECRET],
        { edge: ED_CLIENT_SECRET },
        /^client 'edge' is given a private key \(ed25519-secret:…\); give the server only the client's public key ed25519:…/,
      ],
      [[SERVER_SECRET, ED_SERVER_SECRET], { edge: [ED_CLIENT_PUBLIC, CLIENT_SECRET] }, /mixes HMAC and Ed25519 keys/],
      [
        [SERVER_SECRET, ED_SERVER_SECRET],
        { edge: ED_SERVER_PUBLIC },
        /uses the server's own Ed25519 key; give every client its own key pair/,
      ],
      [[SERVER_SECRET, ED_SERVER_SECRET], { c: SERVER_SECRET }, /uses the server's secret/],
      [[SERVER_SECRET, ED_SERVER_PUBLIC], { c: CLIENT_SECRET }, /server secret #2 is a public key .*ed25519-secret:/],
    ];
    for (const [server, clients, message] of cases) {
      const error = usageError(() => ring(server, clients));
      assert.match(error.message, message);
      assert.ok(!error.message.includes("\n"), "one line");
      for (const secret of [ED_CLIENT_SECRET, ED_SERVER_SECRET, SERVER_SECRET, CLIENT_SECRET]) {
        assert.ok(!error.message.includes(secret.slice(-20)), "no secret in the message");
      }
    }
  });

  it("answers each client with the first server key of its own algorithm; rotation of client keys", () => {
    const rotated = generateEd25519();
    const k = ring(["hmac-one-0123456789", ED_SERVER_SECRET, "hmac-two-0123456789", generateEd25519().secret], {
      [CLIENT_ID]: CLIENT_SECRET,
      [ED_CLIENT_ID]: [rotated.public, ED_CLIENT_PUBLIC],
    });
    assert.equal(k.client(CLIENT_ID)?.alg, "hmac-sha256");
    assert.equal(k.client(CLIENT_ID)?.signer, k.serverKeys[0]);
    assert.equal(k.client(ED_CLIENT_ID)?.alg, "ed25519");
    assert.equal(k.client(ED_CLIENT_ID)?.signer, k.serverKeys[1]);
    assert.equal(k.clientKeys(ED_CLIENT_ID)?.length, 2);
    assert.deepEqual(k.algorithms(), ["hmac-sha256", "ed25519"]);
    assert.equal(k.publicKeys().length, 2);
    assert.equal(k.publicKeys()[0], ED_SERVER_PUBLIC);
    assert.equal(k.client("__proto__"), undefined);
  });

  it("server_identity publishes public_keys and signatures as configured", async () => {
    const { server, ed, hmac } = mixedPair();
    const identity = await ed.call("server_identity");
    assert.deepEqual((identity.capabilities as Record<string, unknown>).public_keys, [ED_SERVER_PUBLIC]);
    assert.deepEqual((identity.capabilities as Record<string, unknown>).signatures, ["hmac-sha256", "ed25519"]);
    assert.deepEqual(await hmac.call("server_identity"), identity);
    await server.close();
    const hmacOnly = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: {} },
      capabilities: { public_keys: ["ed25519:forged"], signatures: ["none"] },
    });
    assert.deepEqual(hmacOnly.info.capabilities.public_keys, [], "a configured capability cannot claim keys");
    assert.deepEqual(hmacOnly.info.capabilities.signatures, ["hmac-sha256"]);
    await hmacOnly.close();
  });
});

describe("a client's keys are of one algorithm (SPEC §7)", () => {
  const base = { clientId: "c", serverId: "s" };
  it("refuses keys that could never verify an answer, or that leak a private key", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ clientSecret: ED_CLIENT_SECRET, serverKey: SERVER_SECRET }, /signs with Ed25519, so the server answers in Ed25519/],
      [{ clientSecret: CLIENT_SECRET, serverKey: ED_SERVER_PUBLIC }, /signs with HMAC, so the server answers in HMAC/],
      [{ clientSecret: ED_CLIENT_SECRET, serverKey: ED_SERVER_SECRET }, /is a private key .*pins only the server's public key/],
      [{ clientSecret: ED_CLIENT_PUBLIC, serverKey: ED_SERVER_PUBLIC }, /public key .* to sign with; give it its private key/],
      [{ clientSecret: CLIENT_SECRET, serverKey: [SERVER_SECRET, ED_SERVER_PUBLIC] }, /mixes HMAC and Ed25519/],
    ];
    for (const [keys, message] of cases) {
      assert.match(
        usageError(() => callerKeys({ ...base, ...(keys as { clientSecret: string; serverKey: string }) })).message,
        message,
      );
    }
    const transport = inProcessTransport(createServer({ keyring: { serverId: "s", serverSecrets: SERVER_SECRET, clients: {} } }));
    assert.throws(
      () =>
        createClient({ ...base, clientSecret: CLIENT_SECRET, serverKey: SERVER_SECRET, serverSecret: SERVER_SECRET, transport }),
      /serverKey or serverSecret .* not both/,
    );
    assert.throws(() => createClient({ ...base, clientSecret: CLIENT_SECRET, transport }), /serverKey is required/);
  });

  it("a client pinning an Ed25519 key accepts nothing else; an HMAC client accepts no Ed25519 answer", () => {
    const transport = { send: async () => ({ body: "", httpStatus: 200 }) };
    const ed = createClient({ ...base, clientSecret: ED_CLIENT_SECRET, serverKey: ED_SERVER_PUBLIC, transport });
    const hm = createClient({ ...base, clientSecret: CLIENT_SECRET, serverSecret: SERVER_SECRET, transport });
    const fields = (requestId: string) => ({
      request_id: requestId,
      ts_ms: Date.now(),
      ok: true,
      server_id: "s",
      status: "ok",
      result: { total: 1000000 },
      error: null,
    });
    const refused = (fn: () => unknown) =>
      assert.throws(fn, (e: unknown) => e instanceof SmcpError && e.code === "bad_signature" && e.origin === "local");
    refused(() => ed.verifyResponse(signResponse(fields("r1"), hmacServer).body, "r1"));
    refused(() => ed.verifyResponse(signResponse(fields("r2"), key(generateEd25519().secret)).body, "r2"));
    refused(() => hm.verifyResponse(signResponse(fields("r3"), key(ED_SERVER_SECRET)).body, "r3"));
    assert.equal(ed.verifyResponse(signResponse(fields("r4"), key(ED_SERVER_SECRET)).body, "r4").result?.total, 1000000);
    assert.equal(hm.verifyResponse(signResponse(fields("r5"), hmacServer).body, "r5").result?.total, 1000000);
  });
});

/** A server with a spy tool, an HMAC client and an Ed25519 client. */
function spyServer() {
  const calls = { spy: 0 };
  const spy = spyTool(calls);
  const nonceStore = new MemoryNonceStore();
  const { server } = mixedPair({ tools: [...demoTools, spy], nonceStore });
  return { server, calls, nonceStore };
}

const envelope = (overrides: Record<string, unknown> = {}) => ({
  v: "mcp/0.1",
  request_id: randomUUID(),
  ts_ms: Date.now(),
  client_id: ED_CLIENT_ID,
  server_id: SERVER_ID,
  tool: "spy",
  args: { n: 1 },
  nonce: randomUUID(),
  ...overrides,
});

/** Checks a bad_signature answer, signed with the server key of the algorithm `alg`. */
function expectBadSignature(result: HandleResult, alg: "ed25519" | "hmac-sha256", label: string): void {
  const { response, body, httpStatus } = result;
  assert.equal(response.result?.code, "bad_signature", `${label}: ${body}`);
  assert.equal(httpStatus, 401, label);
  assert.ok(response.error?.startsWith("bad_signature: "), label);
  const canonical = parseLossless(body, { omitTopLevelKey: "signature" }).canonical;
  if (alg === "ed25519") {
    assert.match(response.signature, /^[0-9a-f]{128}$/, label);
    assert.ok(verifyCanonical([edServer], canonical, response.signature), `${label}: signed with the server's Ed25519 key`);
  } else {
    assert.match(response.signature, /^[0-9a-f]{64}$/, label);
    assert.ok(verifyCanonical([hmacServer], canonical, response.signature), `${label}: signed with the server's HMAC secret`);
  }
}

const withSignature = (body: string, signature: string) => body.replace(/"signature":"[^"]*"/, `"signature":"${signature}"`);

describe("bad Ed25519 and cross-algorithm signatures: bad_signature, nothing run, no nonce burned", () => {
  it("every case from the issue, then a valid request with the same nonce succeeds", async () => {
    const { server, calls, nonceStore } = spyServer();
    const nonce = randomUUID();
    const fields = envelope({ nonce });
    const good = signMessage(fields, edClient);
    const canonical = parseLossless(good.body, { omitTopLevelKey: "signature" }).canonical;
    const sig = good.message.signature;
    const raw = Buffer.from(sig, "hex");
    const malleated = Buffer.concat([raw.subarray(0, 32), toLE(fromLE(raw.subarray(32)) + L)]).toString("hex");
    const hmacWith = (secret: string | Buffer) => createHmac("sha256", secret).update(canonical, "latin1").digest("hex");
    const edCases: [string, string][] = [
      ["HMAC with the public key text as secret", withSignature(good.body, hmacWith(ED_CLIENT_PUBLIC))],
      [
        "HMAC with the raw public key as secret",
        withSignature(good.body, hmacWith(Buffer.from(ED_CLIENT_PUBLIC.slice(8), "base64url"))),
      ],
      ["another Ed25519 key", signMessage(fields, key(generateEd25519().secret)).body],
      ["the server's Ed25519 key", signMessage(fields, key(ED_SERVER_SECRET)).body],
      ["uppercase hex", withSignature(good.body, sig.toUpperCase())],
      ["short hex (127)", withSignature(good.body, sig.slice(0, 127))],
      ["short hex (126)", withSignature(good.body, sig.slice(0, 126))],
      ["long hex (130)", withSignature(good.body, `${sig}00`)],
      ["non-hex", withSignature(good.body, `${sig.slice(0, 127)}g`)],
      ["empty", withSignature(good.body, "")],
      ["non-canonical S + L", withSignature(good.body, malleated)],
      ["all zero", withSignature(good.body, "0".repeat(128))],
      ["an HMAC client's valid signature under the Ed25519 client's id", signMessage(fields, hmacClient).body],
      ["tampered args", good.body.replace('"args":{"n":1}', '"args":{"n":2}')],
      ["tampered number lexeme", good.body.replace('"n":1', '"n":1.0')],
      ["tampered tool", good.body.replace('"tool":"spy"', '"tool":"batch_sum"')],
      ["tampered ts_ms", good.body.replace(/"ts_ms":(\d+)/, (_, ts) => `"ts_ms":${Number(ts) + 1}`)],
      ["tampered request_id", good.body.replace(`"request_id":"${fields.request_id}"`, `"request_id":"${randomUUID()}"`)],
      ["tampered server_id", good.body.replace(`"server_id":"${SERVER_ID}"`, '"server_id":"mcp-server-002"')],
    ];
    for (const [label, body] of edCases) expectBadSignature(await server.handle(body), "ed25519", label);
    // The reverse: an Ed25519 signature (and any 128 hex) under the HMAC client's id; answered in HMAC.
    const hmacFields = { ...fields, client_id: CLIENT_ID };
    const hmacGood = signMessage(hmacFields, hmacClient);
    const hmacCases: [string, string][] = [
      ["an Ed25519 signature under an HMAC client's id", signMessage(hmacFields, edClient).body],
      ["128 hex under an HMAC client's id", withSignature(hmacGood.body, hmacGood.message.signature.repeat(2))],
      ["HMAC signed with the server's secret", signMessage(hmacFields, hmacServer).body],
    ];
    for (const [label, body] of hmacCases) expectBadSignature(await server.handle(body), "hmac-sha256", label);
    assert.equal(calls.spy, 0, "nothing executed");
    assert.equal(nonceStore.size, 0, "no nonce burned");
    // The same nonce, validly signed, still works for each client.
    const ok = await server.handle(good.body);
    assert.equal(ok.response.status, "ok", ok.body);
    assert.match(ok.response.signature, /^[0-9a-f]{128}$/);
    const okHmac = await server.handle(hmacGood.body);
    assert.equal(okHmac.response.status, "ok", okHmac.body);
    assert.match(okHmac.response.signature, /^[0-9a-f]{64}$/);
    assert.equal(calls.spy, 2);
    await server.close();
  });

  it("every answer to an Ed25519 client is in Ed25519 (errors after auth too); before the client is known, the first key signs", async () => {
    const { server } = spyServer();
    const answers = [
      await server.handle(signMessage(envelope({ tool: "nope" }), edClient).body),
      await server.handle(signMessage(envelope({ args: { n: "x" } }), edClient).body),
      await server.handle(signMessage(envelope({ server_id: "other" }), edClient).body),
      await server.handle(signMessage(envelope({ ts_ms: Date.now() - 10_000_000 }), edClient).body),
    ];
    assert.deepEqual(
      answers.map((a) => a.response.result?.code),
      ["unknown_tool", "bad_args", "wrong_server", "stale"],
    );
    for (const a of answers) {
      const canonical = parseLossless(a.body, { omitTopLevelKey: "signature" }).canonical;
      assert.ok(verifyCanonical([edServer], canonical, a.response.signature), a.body);
    }
    // Unknown client and malformed input: the server's first key, HMAC here...
    const unknown = await server.handle(signMessage(envelope({ client_id: "nobody" }), edClient).body);
    assert.equal(unknown.response.result?.code, "unknown_client");
    assert.match(unknown.response.signature, /^[0-9a-f]{64}$/);
    await server.close();
    // ...and Ed25519 on a server whose first key is Ed25519.
    const edFirst = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: [ED_SERVER_SECRET, SERVER_SECRET], clients: { [CLIENT_ID]: CLIENT_SECRET } },
    });
    for (const body of ["not json", signMessage(envelope({ client_id: "nobody" }), edClient).body]) {
      const answer = await edFirst.handle(body);
      const canonical = parseLossless(answer.body, { omitTopLevelKey: "signature" }).canonical;
      assert.ok(verifyCanonical([edServer], canonical, answer.response.signature), answer.body);
    }
    assert.equal(
      (await edFirst.handle(signMessage(envelope({ client_id: CLIENT_ID }), hmacClient).body)).response.signature.length,
      64,
    );
    await edFirst.close();
  });

  it("HMAC and Ed25519 clients of one server work side by side, including a job polled to done", async () => {
    const { server, hmac, ed } = mixedPair();
    const [a, b] = await Promise.all([hmac.call("batch_sum", { numbers: [1, 2] }), ed.call("batch_sum", { numbers: [3, 4] })]);
    assert.deepEqual(a, { count: 2, total: 3 });
    assert.deepEqual(b, { count: 2, total: 7 });
    const done = await ed.callAndWait("start_long_task", { seconds: 1, payload: { k: "v" } }, { pollIntervalMs: 50 });
    assert.deepEqual(done, { k: "v" });
    await server.close();
  });
});

describe("generative: mutations of Ed25519-signed messages", () => {
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant("replace" as const),
      at: fc.nat(),
      char: fc.constantFrom(...'0123456789abcdefABCDEF"{}[]:,. -e\\nx'),
    }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), char: fc.constantFrom(...'0123456789af" ,:{}1.e') }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
  );
  function mutate(text: string, edits: readonly Mutation[]): string {
    let out = text;
    for (const m of edits) {
      const at = m.at % (out.length + (m.kind === "insert" ? 1 : 0));
      if (m.kind === "replace") out = out.slice(0, at) + m.char + out.slice(at + 1);
      else if (m.kind === "insert") out = out.slice(0, at) + m.char + out.slice(at);
      else if (m.kind === "delete") out = out.slice(0, at) + out.slice(at + 1);
      else {
        const other = m.with % out.length;
        const chars = [...out];
        [chars[at], chars[other]] = [chars[other] as string, chars[at] as string];
        out = chars.join("");
      }
    }
    return out;
  }
  type Mutation =
    | { kind: "replace"; at: number; char: string }
    | { kind: "insert"; at: number; char: string }
    | { kind: "delete"; at: number }
    | { kind: "swap"; at: number; with: number };

  /** The signed content of a message text (canonical form without the signature, and the signature), or undefined. */
  function content(text: string): string | undefined {
    try {
      const parsed = parseLossless(text, { omitTopLevelKey: "signature" });
      return `${parsed.canonical}|${String((parsed.value as { signature?: unknown }).signature)}`;
    } catch {
      return undefined;
    }
  }

  it("the server never accepts a mutated envelope unless it is the same signed content", async () => {
    const { server, calls } = spyServer();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (edits) => {
        const good = signMessage(envelope({ args: { n: 1.5 } }), edClient).body;
        const mutated = mutate(good, edits as Mutation[]);
        const answer = await server.handle(mutated);
        if (answer.response.ok) {
          accepted++;
          assert.equal(content(mutated), content(good), `accepted a different message: ${mutated}`);
        }
      }),
      { numRuns: 400 },
    );
    assert.equal(calls.spy, accepted, "only accepted envelopes ran");
    await server.close();
  });

  it("a client pinning an Ed25519 key never accepts a mutated answer unless it is the same signed content", () => {
    const transport = { send: async () => ({ body: "", httpStatus: 200 }) };
    const client = createClient({
      clientId: ED_CLIENT_ID,
      clientSecret: ED_CLIENT_SECRET,
      serverId: SERVER_ID,
      serverKey: ED_SERVER_PUBLIC,
      transport,
    });
    const serverKey = key(ED_SERVER_SECRET);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (edits) => {
        const requestId = randomUUID();
        const good = signResponse(
          {
            request_id: requestId,
            ts_ms: Date.now(),
            ok: true,
            server_id: SERVER_ID,
            status: "ok",
            result: { count: 3, total: 6.5 },
            error: null,
          },
          serverKey,
        ).body;
        const mutated = mutate(good, edits as Mutation[]);
        let accepted = false;
        try {
          client.verifyResponse(mutated, requestId);
          accepted = true;
        } catch (error) {
          assert.ok(error instanceof SmcpError && error.origin === "local", String(error));
        }
        if (accepted) assert.equal(content(mutated), content(good), `accepted a different answer: ${mutated}`);
      }),
      { numRuns: 400 },
    );
  });
});

describe("toKeys keeps the HMAC rules", () => {
  it("16-byte minimum and labels", () => {
    const [k] = toKeys([{ secret: "a-secret-of-16-bytes!", kid: "k1" }], "x");
    assert.equal(k?.kid, "k1");
    assert.equal(k?.alg, "hmac-sha256");
    assert.throws(() => toKeys("tiny", "x"), /at least 16/);
    assert.throws(() => toKeys([], "x"), /no secret/);
  });
});
