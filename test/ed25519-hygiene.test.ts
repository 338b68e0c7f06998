/**
 * SPEC §7 key hygiene: Ed25519 public keys that are not canonical points, or
 * are of small order, are refused where they are read; verification refuses
 * S ≥ L, a small-order R, and a public key the loader did not vet.
 *
 * The small-order encodings are derived here from the curve (with noble's
 * point arithmetic), not copied from a list.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync, verify as nodeVerify, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ED25519_TORSION_SUBGROUP, ed25519 } from "@noble/curves/ed25519.js";
import fc from "fast-check";
import { runCli } from "../src/cli/run.js";
import {
  callerKeys,
  createClient,
  createServer,
  demoTools,
  ed25519PublicKeyFlaw,
  type HandleResult,
  isSmallOrderEncoding,
  jwkToKeyString,
  type Key,
  Keyring,
  parseKey,
  parseLossless,
  SmcpUsageError,
  signCanonical,
  signMessage,
  verifyCanonical,
} from "../src/index.js";
import type { Ed25519Key } from "../src/protocol/keys.js";
import { captureIO } from "./cli-helpers.js";
import { runProperty } from "./fuzz/run.js";
import {
  ED_CLIENT_ID,
  ED_CLIENT_PUBLIC,
  ED_CLIENT_SECRET,
  ED_SERVER_PUBLIC,
  ED_SERVER_SECRET,
  SERVER_ID,
  spyTool,
} from "./helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const Point = ed25519.Point;
type EdPoint = ReturnType<typeof Point.fromBytes>;
const p = Point.Fp.ORDER;
const L = Point.Fn.ORDER;
const TWO_255 = 1n << 255n;

/** 32 bytes little-endian of `n` (n < 2^256). */
const le = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, "0"), "hex").reverse();
const fromLE = (bytes: Uint8Array): bigint => bytes.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);
/** The encoding of y (which may be ≥ p: non-canonical) with x's sign bit. */
const encode = (y: bigint, sign: 0 | 1): Buffer => {
  const bytes = le(y);
  bytes[31] = (bytes[31] as number) | (sign << 7);
  return bytes;
};
const text = (raw: Uint8Array) => `ed25519:${Buffer.from(raw).toString("base64url")}`;
const hex = (raw: Uint8Array) => Buffer.from(raw).toString("hex");

/**
 * An element of order exactly 8. For any curve point Q, [L]Q kills its
 * prime-order part and leaves its torsion part; the first Q (by y) whose
 * torsion part has order 8 generates the whole torsion subgroup (it is cyclic).
 */
function torsionGenerator(): EdPoint {
  for (let y = 2n; ; y++) {
    let q: EdPoint;
    try {
      q = Point.fromBytes(le(y));
    } catch {
      continue; // no x for this y
    }
    const t = q.multiplyUnsafe(L - 1n).add(q);
    if (!t.multiplyUnsafe(4n).is0()) return t;
  }
}

const T8 = torsionGenerator();
/** The 8 points of small order: [k]T8 for k = 0..7. */
const TORSION = Array.from({ length: 8 }, (_, k) => T8.multiplyUnsafe(BigInt(k)));
const TORSION_YS = [...new Set(TORSION.map((t) => t.toAffine().y))];
/**
 * Every 32-byte string a lax decoder reads as a small-order point: its y is a
 * torsion y, or that plus p when still below 2^255, with either sign bit (for
 * x ≠ 0 both signs are torsion points; for x = 0 the set bit is non-canonical).
 */
const SMALL_ORDER = TORSION_YS.flatMap((y) =>
  [y, y + p].filter((yy) => yy < TWO_255).flatMap((yy) => [encode(yy, 0), encode(yy, 1)]),
);
/** The first y below p that has no x on the curve. */
const NO_X_Y = (() => {
  for (let y = 2n; ; y++) {
    try {
      Point.fromBytes(le(y), true);
    } catch {
      return y;
    }
  }
})();
/** Non-canonical or off-curve encodings that are not small-order encodings. */
const NOT_CANONICAL = [
  ...Array.from({ length: 17 }, (_, k) => encode(p + 2n + BigInt(k), 0)), // y = p+2 … p+18 = 2^255 - 1, the largest
  encode(TWO_255 - 1n, 1), // the same, sign bit set
  encode(NO_X_Y, 0),
  encode(NO_X_Y, 1),
];

/** The reference: canonical (decodes strictly, or laxly and re-encodes the same bytes) and not of small order. */
function referenceUsable(raw: Uint8Array): boolean {
  let point: EdPoint;
  try {
    point = Point.fromBytes(raw, true); // ZIP-215: accepts any y < 2^255 and x = 0 with the sign bit
  } catch {
    return false;
  }
  return hex(point.toBytes()) === hex(raw) && !point.multiplyUnsafe(8n).is0();
}

/** The usage error thrown by `fn`; fails when it throws nothing or something else. */
function usageError(fn: () => unknown, label: string): SmcpUsageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SmcpUsageError, `${label}: ${String(error)}`);
    return error;
  }
  assert.fail(`${label}: expected an SmcpUsageError`);
}

const noNetwork = { send: async () => ({ body: "", httpStatus: 500 }) };

/** Every place an Ed25519 public key is read, given `raw` as the key. */
function readers(raw: Uint8Array): [string, () => unknown][] {
  const key = text(raw);
  const x = Buffer.from(raw).toString("base64url");
  return [
    ["parseKey", () => parseKey(key, "test")],
    [
      "a keyring's client record",
      () => new Keyring({ serverId: SERVER_ID, serverSecrets: ED_SERVER_SECRET, clients: { weak: key } }),
    ],
    [
      "a server's client record",
      () => createServer({ keyring: { serverId: SERVER_ID, serverSecrets: ED_SERVER_SECRET, clients: { weak: key } } }),
    ],
    ["a JWK", () => jwkToKeyString({ kty: "OKP", crv: "Ed25519", x }, "the keyring file")],
    [
      "a client's pinned server key",
      () => callerKeys({ clientId: ED_CLIENT_ID, serverId: SERVER_ID, clientSecret: ED_CLIENT_SECRET, serverKey: key }),
    ],
    [
      "createClient's serverKey",
      () =>
        createClient({
          clientId: ED_CLIENT_ID,
          serverId: SERVER_ID,
          clientSecret: ED_CLIENT_SECRET,
          serverKey: [ED_SERVER_PUBLIC, key],
          transport: noNetwork,
        }),
    ],
  ];
}

// RFC 8032 §7.1, TESTs 1–3: secret key (seed), public key, message, signature.
const RFC8032 = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature:
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature:
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
  {
    seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    message: "af82",
    signature:
      "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
  },
];

describe("the small-order fixtures (derived from the curve here)", () => {
  it("14 encodings: the 8 torsion points, as noble lists them, and 6 non-canonical spellings", () => {
    assert.equal(TORSION_YS.length, 5, "y = 1, -1, 0 and the two y of order 8");
    assert.equal(SMALL_ORDER.length, 14);
    assert.equal(new Set(SMALL_ORDER.map(hex)).size, 14);
    const canonical = SMALL_ORDER.filter((raw) => {
      try {
        Point.fromBytes(raw, false);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(canonical.map(hex).sort(), [...ED25519_TORSION_SUBGROUP].sort());
    for (const raw of SMALL_ORDER) assert.ok(Point.fromBytes(raw, true).isSmallOrder(), hex(raw));
    assert.deepEqual(TORSION.map((t) => t.multiplyUnsafe(4n).is0()).filter((quartered) => !quartered).length, 4);
  });
});

describe("Ed25519 public keys are vetted where they are read (SPEC §7 key hygiene)", () => {
  it("RFC 8032 §7.1 TESTs 1–3: the seed gives the public key and signature; the public key verifies it", () => {
    for (const [index, vector] of RFC8032.entries()) {
      const label = `TEST ${index + 1}`;
      const secret = parseKey(`ed25519-secret:${Buffer.from(vector.seed, "hex").toString("base64url")}`, label);
      const pub = parseKey(text(Buffer.from(vector.public, "hex")), label) as Key;
      assert.equal(secret.alg === "ed25519" && secret.public, text(Buffer.from(vector.public, "hex")), label);
      // The canonical text is latin1: these messages' bytes are its characters.
      const message = Buffer.from(vector.message, "hex").toString("latin1");
      assert.equal(signCanonical(secret, message), vector.signature, label);
      assert.equal(verifyCanonical([pub], message, vector.signature), pub, label);
      assert.equal(verifyCanonical([pub], `${message}x`, vector.signature), undefined, label);
    }
  });

  it("keys from smcp keygen (Node's generateKeyPairSync) are accepted and verify", () => {
    for (let i = 0; i < 50; i++) {
      const { publicKey, privateKey } = generateKeyPairSync("ed25519");
      const raw = publicKey.export({ format: "jwk" }).x as string;
      const pub = parseKey(`ed25519:${raw}`, "generated");
      assert.equal(jwkToKeyString({ kty: "OKP", crv: "Ed25519", x: raw }, "generated"), `ed25519:${raw}`);
      const d = privateKey.export({ format: "jwk" }).d as string;
      const secret = parseKey(`ed25519-secret:${d}`, "generated");
      assert.equal(verifyCanonical([pub], "{}", signCanonical(secret, "{}")), pub);
    }
  });

  it("every small-order and non-canonical encoding is refused by every reader, naming the fix, never quoting the key", () => {
    const cases: [Buffer, RegExp][] = [
      ...SMALL_ORDER.map((raw): [Buffer, RegExp] => [
        raw,
        referenceCanonical(raw) ? /\(a small-order point: anyone could forge its signatures\)/ : /\(not the canonical encoding/,
      ]),
      ...NOT_CANONICAL.map((raw): [Buffer, RegExp] => [raw, /\(not the canonical encoding of a point on the curve\)/]),
    ];
    for (const [raw, reason] of cases) {
      assert.ok(!referenceUsable(raw));
      assert.ok(ed25519PublicKeyFlaw(raw) !== undefined);
      for (const [where, read] of readers(raw)) {
        const label = `${where}, ${hex(raw)}`;
        const { message } = usageError(read, label);
        assert.match(message, /is not a usable Ed25519 public key/, label);
        assert.match(message, reason, label);
        assert.match(message, /make a key pair with `smcp keygen --alg ed25519`/, label);
        assert.ok(!message.includes(Buffer.from(raw).toString("base64url")), `${label}: the key is not quoted`);
        assert.equal(message.split("\n").length, 1, label);
      }
    }
  });

  it("a key with a torsion part that is not of small order is a point SPEC §7 accepts", () => {
    const mixed = Point.BASE.multiply(12345n).add(T8);
    assert.equal(ed25519PublicKeyFlaw(mixed.toBytes()), undefined);
    assert.equal(parseKey(text(mixed.toBytes()), "mixed").alg, "ed25519");
  });
});

/** True when `raw` decodes under RFC 8032's strict rules (whatever the point's order). */
function referenceCanonical(raw: Uint8Array): boolean {
  try {
    Point.fromBytes(raw, true);
  } catch {
    return false;
  }
  return hex(Point.fromBytes(raw, true).toBytes()) === hex(raw);
}

/**
 * A signature that Node's (cofactorless) verify accepts although its R is of
 * small order: the owner of A = [a]B + T8 signs with S = k·a, so that
 * [S]B − [k]A = −[k]T8, and tries R = −[j]T8 until k ≡ j (mod 8).
 */
function smallOrderRSignature(a: bigint, canonicalOf: (attempt: number) => string) {
  const A = Point.BASE.multiply(a).add(T8);
  for (let attempt = 0; ; attempt++) {
    const canonical = canonicalOf(attempt);
    for (let j = 0; j < 8; j++) {
      const R = T8.multiplyUnsafe(BigInt(j)).negate();
      const digest = createHash("sha512")
        .update(R.toBytes())
        .update(A.toBytes())
        .update(Buffer.from(canonical, "latin1"))
        .digest();
      const k = fromLE(digest) % L;
      if (k % 8n !== BigInt(j)) continue;
      const signature = Buffer.concat([R.toBytes(), le((k * a) % L)]);
      return { publicKey: A.toBytes(), canonical, signature, attempt };
    }
  }
}

/** A server with one legitimate Ed25519 client and the mixed-order client "mixed". */
function hygieneServer(mixedPublic: Uint8Array) {
  const calls = { spy: 0 };
  const server = createServer({
    keyring: {
      serverId: SERVER_ID,
      serverSecrets: ED_SERVER_SECRET,
      clients: { [ED_CLIENT_ID]: ED_CLIENT_PUBLIC, mixed: text(mixedPublic) },
    },
    tools: [...demoTools, spyTool(calls)],
  });
  return { server, calls };
}

const envelope = (clientId: string) => ({
  v: "mcp/0.1",
  request_id: randomUUID(),
  ts_ms: Date.now(),
  client_id: clientId,
  server_id: SERVER_ID,
  tool: "spy",
  args: { n: 1 },
  nonce: randomUUID(),
});
const withSignature = (body: string, signature: string) => body.replace(/"signature":"[^"]*"/, `"signature":"${signature}"`);
const canonicalOf = (body: string) => parseLossless(body, { omitTopLevelKey: "signature" }).canonical;
const isBadSignature = ({ response }: HandleResult) => response.status === "error" && response.result?.code === "bad_signature";

describe("strict verification (SPEC §7): small-order R, S ≥ L, unvetted keys", () => {
  it("a server answers bad_signature to R of small order (S = 0, or crafted to pass Node's check) and to S + L; nothing runs", async (t) => {
    const a = 0x5eed5eed5eedn;
    const mixedPublic = Point.BASE.multiply(a).add(T8).toBytes();
    const { server, calls } = hygieneServer(mixedPublic);
    const edClient = parseKey(ED_CLIENT_SECRET, "client");
    // The owner of a mixed-order key makes a signature that only a cofactorless check would accept.
    const bodies: string[] = [];
    const forged = smallOrderRSignature(a, (attempt) => {
      bodies[attempt] = signMessage(envelope("mixed"), edClient).body;
      return canonicalOf(bodies[attempt] as string);
    });
    const forgedBody = withSignature(bodies[forged.attempt] as string, forged.signature.toString("hex"));
    const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), forged.publicKey]);
    const nodeKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    // OpenSSL 3.0 (Node 20) accepts it; newer ones may refuse it themselves. Ours refuses it either way.
    t.diagnostic(
      `Node alone ${nodeVerify(null, Buffer.from(forged.canonical, "latin1"), nodeKey, forged.signature) ? "accepts" : "refuses"} it`,
    );
    assert.ok(isBadSignature(await server.handle(forgedBody)), "small-order R crafted for a mixed-order key");

    const good = signMessage(envelope(ED_CLIENT_ID), edClient);
    const raw = Buffer.from(good.message.signature, "hex");
    const plusL = Buffer.concat([raw.subarray(0, 32), le(fromLE(raw.subarray(32)) + L)]);
    assert.ok(isBadSignature(await server.handle(withSignature(good.body, plusL.toString("hex")))), "S + L");
    for (const R of SMALL_ORDER) {
      const body = signMessage(envelope(ED_CLIENT_ID), edClient).body;
      const signature = Buffer.concat([R, Buffer.alloc(32)]).toString("hex");
      assert.ok(isBadSignature(await server.handle(withSignature(body, signature))), `R = ${hex(R)}, S = 0`);
    }
    assert.equal(calls.spy, 0, "nothing executed");
    const ok = await server.handle(good.body);
    assert.equal(ok.response.status, "ok", ok.body);
    assert.equal(calls.spy, 1);
    await server.close();
  });

  it("an Ed25519Key built by hand around the identity verifies nothing, whether or not Node's OpenSSL accepts R = identity, S = 0 for it", (t) => {
    const identity = SMALL_ORDER.find((raw) => hex(raw) === hex(Point.ZERO.toBytes())) as Buffer;
    const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), identity]);
    const publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    const forged = Buffer.concat([identity, Buffer.alloc(32)]);
    // OpenSSL 3.0 (Node 20) accepts this forgery; newer ones may not. Ours refuses it either way.
    t.diagnostic(
      `Node ${process.version} alone ${nodeVerify(null, Buffer.from("any message"), publicKey, forged) ? "accepts" : "refuses"} the report's forgery`,
    );
    const handMade: Ed25519Key = { alg: "ed25519", kid: "x", publicKey, privateKey: undefined, public: text(identity) };
    assert.equal(verifyCanonical([handMade], "any message", forged.toString("hex")), undefined);
  });

  it("isSmallOrderEncoding: exactly the 14 encodings, and none of their one-bit neighbours", () => {
    for (const raw of SMALL_ORDER) {
      assert.ok(isSmallOrderEncoding(raw), hex(raw));
      assert.ok(isSmallOrderEncoding(Buffer.concat([raw, Buffer.alloc(32, 0xff)])), "reads only the first 32 bytes");
      for (let bit = 0; bit < 256; bit++) {
        const neighbour = Buffer.from(raw);
        neighbour[bit >> 3] = (neighbour[bit >> 3] as number) ^ (1 << (bit & 7));
        const expected = SMALL_ORDER.some((other) => other.equals(neighbour));
        assert.equal(isSmallOrderEncoding(neighbour), expected, `${hex(raw)} bit ${bit}`);
      }
    }
    assert.ok(!isSmallOrderEncoding(new Uint8Array(31)), "short input");
  });
});

describe("generative: key hygiene agrees with a reference; mutated signatures never verify", () => {
  const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
  // Random keys are almost never small order or y ≥ p, so most cases start near those edges.
  const edges = [...SMALL_ORDER, ...NOT_CANONICAL, encode(NO_X_Y, 0)];
  const nearEdge = fc.record({ base: fc.constantFrom(...edges), at: fc.nat(31), xor: fc.nat(255) }).map(({ base, at, xor }) => {
    const out = Buffer.from(base);
    out[at] = (out[at] as number) ^ xor;
    return new Uint8Array(out);
  });
  const nearP = fc
    .record({ offset: fc.bigInt({ min: -40n, max: 40n }), sign: fc.constantFrom<0 | 1>(0, 1), small: fc.boolean() })
    .map(({ offset, sign, small }) => new Uint8Array(encode((small ? 20n : p) + offset, sign)));
  const keys = fc.oneof(bytes32, nearEdge, nearP, fc.constantFrom(...edges.map((raw) => new Uint8Array(raw))));

  it("a 32-byte public key is accepted exactly when it is a canonical point not of small order", async (t) => {
    await runProperty(
      t,
      keys,
      (raw) => {
        const usable = referenceUsable(raw);
        let accepted: boolean;
        try {
          parseKey(text(raw), "fuzz");
          accepted = true;
        } catch (error) {
          assert.ok(error instanceof SmcpUsageError, String(error));
          accepted = false;
        }
        assert.equal(accepted, usable, hex(raw));
        assert.equal(
          isSmallOrderEncoding(raw),
          (() => {
            try {
              return Point.fromBytes(raw, true).isSmallOrder();
            } catch {
              return false;
            }
          })(),
          `R ${hex(raw)}`,
        );
      },
      { runs: 1500, seconds: 3 },
    );
  });

  it("no mutation of a valid signature verifies: bit flips, R swapped for a small-order point, S + k·L", async (t) => {
    const signer = parseKey(ED_CLIENT_SECRET, "client");
    const verifier = parseKey(ED_CLIENT_PUBLIC, "client");
    const canonical = '{"a":1}';
    const good = Buffer.from(signCanonical(signer, canonical), "hex");
    const mutation = fc.oneof(
      fc
        .array(fc.record({ at: fc.nat(63), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 })
        .map((edits) => {
          const out = Buffer.from(good);
          for (const { at, xor } of edits) out[at] = (out[at] as number) ^ xor;
          return out;
        }),
      fc
        .record({ R: fc.constantFrom(...SMALL_ORDER), s: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: L - 1n })) })
        .map(({ R, s }) => Buffer.concat([R, le(s)])),
      fc
        .integer({ min: 1, max: 14 }) // S + 14·L < 2^256
        .map((k) => Buffer.concat([good.subarray(0, 32), le(fromLE(good.subarray(32)) + BigInt(k) * L)])),
    );
    await runProperty(
      t,
      mutation,
      (signature) => {
        if (signature.equals(good)) return; // the bit flips can cancel out
        assert.equal(verifyCanonical([verifier], canonical, signature.toString("hex")), undefined, hex(signature));
      },
      { runs: 1000, seconds: 2 },
    );
  });
});

/**
 * Runs the real CLI (from source) and resolves with its exit code and output,
 * or — if it prints a first stdout line, i.e. it started serving — stops it
 * and resolves with `started` set, so a regression fails instead of hanging.
 */
async function runToExit(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = once(child, "exit") as Promise<[number | null]>;
  const firstLine = once(createInterface({ input: child.stdout }), "line") as Promise<[string]>;
  const first = await Promise.race([exited.then(() => undefined), firstLine.then(([line]) => line)]);
  if (first !== undefined) child.kill("SIGTERM");
  const [code] = await exited;
  return { code, stderr, started: first };
}

describe("the CLI refuses a small-order key at start (the report's command)", () => {
  const dir = mkdtempSync(join(tmpdir(), "smcp-hygiene-"));
  const NO_FILE = join(dir, "none.json");
  const IDENTITY = "ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const serve = ["serve", "--port", "0", "--store", "memory"];

  it("smcp serve --client weak=ed25519:<identity> is exit 2, one line, nothing started", async () => {
    const run = await runToExit([...serve, "--server-secret", ED_SERVER_SECRET, "--client", `weak=${IDENTITY}`], {
      SMCP_CONFIG: NO_FILE,
    });
    assert.equal(run.started, undefined, "it started serving");
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /^smcp: client 'weak' .*is not a usable Ed25519 public key \(a small-order point: anyone could forge its signatures\); make a key pair with `smcp keygen --alg ed25519`\n$/,
    );
    assert.ok(!run.stderr.includes(IDENTITY.slice(8)), "the key is not quoted");
  });

  it("a small-order key in a keyring file (as a JWK) and in SMCP_SERVER_KEY is exit 2 before anything is sent", async () => {
    const path = join(dir, "weak.json");
    const x = IDENTITY.slice("ed25519:".length);
    writeFileSync(
      path,
      JSON.stringify({
        server_id: SERVER_ID,
        server_secret: ED_SERVER_SECRET,
        clients: { weak: { kty: "OKP", crv: "Ed25519", x } },
      }),
      { mode: 0o600 },
    );
    const served = await runToExit([...serve, "--config", path], {});
    assert.equal(served.started, undefined, "it started serving");
    assert.equal(served.code, 2, served.stderr);
    assert.match(served.stderr, /the JWK's "x" is not a usable Ed25519 public key \(a small-order point/);

    const env = { SMCP_CONFIG: NO_FILE, SMCP_SERVER_KEY: IDENTITY, SMCP_CLIENT_SECRET: ED_CLIENT_SECRET };
    const called = captureIO(env);
    const flags = ["--url", "http://127.0.0.1:9/mcp", "--client-id", ED_CLIENT_ID, "--server-id", SERVER_ID];
    assert.equal(await runCli(["call", "server_identity", ...flags], called), 2, called.errText());
    assert.match(called.errText(), /is not a usable Ed25519 public key \(a small-order point/);
    assert.ok(!called.errText().includes(x), "the key is not quoted");
  });
});
