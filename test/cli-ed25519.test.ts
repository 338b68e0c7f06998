import assert from "node:assert/strict";
import { once } from "node:events";
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../src/cli/run.js";
import { resolveServeSettings } from "../src/cli/serve.js";
import { type RunningServer, serveHttp } from "../src/http.js";
import { Keyring, parseJson } from "../src/index.js";
import { generateEd25519, type Key, parseKey, publicKeyOf } from "../src/protocol/keys.js";
import { signResponse } from "../src/protocol/sign.js";
import { captureIO } from "./cli-helpers.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  ED_CLIENT_ID,
  ED_CLIENT_PUBLIC,
  ED_CLIENT_SECRET,
  ED_SERVER_PUBLIC,
  ED_SERVER_SECRET,
  mixedPair,
  python,
  SERVER_ID,
  SERVER_SECRET,
  until,
} from "./helpers.js";
import { type Child, startCli } from "./process-helpers.js";

const noStack = (text: string) => assert.doesNotMatch(text, /\n\s+at |Error:\s*$/m);
const dir = mkdtempSync(join(tmpdir(), "smcp-cli-ed25519-"));
// A config path that does not exist, so nothing on this machine leaks into a test.
const NO_FILE = join(dir, "none.json");
const env = { SMCP_CONFIG: NO_FILE };

/** An Ed25519 key string as an RFC 8037 JWK. */
function jwkOf(text: string): Record<string, string> {
  const x = (text.startsWith("ed25519:") ? text : publicKeyOf(text, "jwk")).slice("ed25519:".length);
  const jwk: Record<string, string> = { kty: "OKP", crv: "Ed25519", x };
  if (text.startsWith("ed25519-secret:")) jwk.d = text.slice("ed25519-secret:".length);
  return jwk;
}

function writeFile(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value), { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

const edFlags = (url: string, serverKey = ED_SERVER_PUBLIC) => [
  "--url",
  url,
  "--client-id",
  ED_CLIENT_ID,
  "--client-secret",
  ED_CLIENT_SECRET,
  "--server-id",
  SERVER_ID,
  "--server-key",
  serverKey,
];

describe("smcp keygen --alg ed25519", () => {
  it("--json prints one line {alg, secret, public}: a matching pair (Python's cryptography derives the same public key)", async () => {
    const a = captureIO();
    const b = captureIO();
    assert.equal(await runCli(["keygen", "--alg", "ed25519", "--json"], a), 0);
    assert.equal(await runCli(["keygen", "--alg", "ed25519", "--json"], b), 0);
    assert.equal(a.stdout.length, 1);
    assert.match(
      a.outText(),
      /^\{"alg":"ed25519","secret":"ed25519-secret:[A-Za-z0-9_-]{43}","public":"ed25519:[A-Za-z0-9_-]{43}"\}$/,
    );
    const pair = JSON.parse(a.outText()) as { secret: string; public: string };
    assert.equal(publicKeyOf(pair.secret, "x"), pair.public);
    assert.deepEqual(python<string[]>("ed25519-public", { secrets: [pair.secret] }), [pair.public]);
    assert.notEqual(a.outText(), b.outText());
    assert.deepEqual(a.stderr, []);
  });

  it("without --json: two readable lines; `smcp keygen` alone is unchanged; a bad --alg is exit 2", async () => {
    const io = captureIO();
    assert.equal(await runCli(["keygen", "--alg", "ed25519"], io), 0);
    assert.equal(io.stdout.length, 2);
    assert.match(io.stdout[0] as string, /^secret: ed25519-secret:[A-Za-z0-9_-]{43}$/);
    assert.match(io.stdout[1] as string, /^public: ed25519:[A-Za-z0-9_-]{43}$/);
    assert.equal(publicKeyOf((io.stdout[0] as string).slice(8), "x"), (io.stdout[1] as string).slice(8));
    const plain = captureIO();
    assert.equal(await runCli(["keygen"], plain), 0);
    assert.match(plain.outText(), /^[A-Za-z0-9_-]{43}$/);
    const json = captureIO();
    assert.equal(await runCli(["keygen", "--json"], json), 0);
    assert.match(json.outText(), /^\{"alg":"hmac-sha256","secret":"[A-Za-z0-9_-]{43}"\}$/);
    const bad = captureIO();
    assert.equal(await runCli(["keygen", "--alg", "rsa"], bad), 2);
    assert.equal(bad.errText(), "smcp: --alg must be hmac or ed25519");
  });
});

describe("smcp serve with an HMAC client and an Ed25519 client (the real binary)", () => {
  let serve: Child;
  let url = "";
  before(async () => {
    serve = await startCli([
      "serve",
      "--port",
      "0",
      "--store",
      "memory",
      "--server-id",
      SERVER_ID,
      "--server-secret",
      SERVER_SECRET,
      "--server-secret",
      ED_SERVER_SECRET,
      "--client",
      `${CLIENT_ID}=${CLIENT_SECRET}`,
      "--client",
      `${ED_CLIENT_ID}=${ED_CLIENT_PUBLIC}`,
      "--config",
      NO_FILE,
    ]);
    url = `${(/^listening on (\S+)$/.exec(serve.line) as RegExpExecArray)[1]}/mcp`;
  });
  after(async () => {
    assert.equal(await serve.stop(), 0);
    for (const secret of [SERVER_SECRET, ED_SERVER_SECRET, CLIENT_SECRET])
      assert.ok(!serve.stderr().includes(secret), "no secret logged");
  });

  it("both clients call it, each verified in its own algorithm; --server-key, its alias --server-secret, SMCP_SERVER_KEY", async () => {
    const hmacFlags = ["--url", url, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--server-id", SERVER_ID];
    const runs: [string[], NodeJS.ProcessEnv][] = [
      [[...hmacFlags, "--server-secret", SERVER_SECRET], env],
      [[...hmacFlags, "--server-key", SERVER_SECRET], env],
      [edFlags(url), env],
      [
        ["--url", url, "--client-id", ED_CLIENT_ID, "--server-id", SERVER_ID],
        { ...env, SMCP_SERVER_KEY: ED_SERVER_PUBLIC, SMCP_CLIENT_SECRET: ED_CLIENT_SECRET },
      ],
    ];
    for (const [flags, environment] of runs) {
      const io = captureIO(environment);
      assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1,2.5]}', "--json", ...flags], io), 0, io.errText());
      const response = JSON.parse(io.outText());
      assert.deepEqual(response.result, { count: 2, total: 3.5 });
      assert.match(response.signature, flags.includes(ED_CLIENT_ID) ? /^[0-9a-f]{128}$/ : /^[0-9a-f]{64}$/);
    }
    const identity = captureIO(env);
    assert.equal(await runCli(["call", "server_identity", ...edFlags(url)], identity), 0, identity.errText());
    const capabilities = JSON.parse(identity.outText()).capabilities;
    assert.deepEqual(capabilities.public_keys, [ED_SERVER_PUBLIC]);
    assert.deepEqual(capabilities.signatures, ["hmac-sha256", "ed25519"]);
    const tools = captureIO(env);
    assert.equal(await runCli(["tools", ...edFlags(url)], tools), 0, tools.errText());
    assert.match(tools.outText(), /^batch_sum +sync +numbers: number\[\] /m);
  });

  it("a wrong pinned key is exit 2 bad_signature; keys of the wrong kind are exit 2 naming the fix", async () => {
    const cases: [string[], RegExp][] = [
      [edFlags(url, generateEd25519().public), /^smcp: bad_signature: the response signature does not verify/],
      [edFlags(url, SERVER_SECRET), /signs with Ed25519, so the server answers in Ed25519: give the server's public key/],
      [edFlags(url, ED_SERVER_SECRET), /is a private key .*pins only the server's public key/],
      [[...edFlags(url), "--server-secret", ED_SERVER_PUBLIC], /give --server-key or --server-secret .*not both/],
      [
        ["--url", url, "--client-id", ED_CLIENT_ID, "--client-secret", ED_CLIENT_PUBLIC, "--server-key", ED_SERVER_PUBLIC],
        /public key .* to sign with; give it its private key ed25519-secret:/,
      ],
    ];
    for (const [flags, message] of cases) {
      const io = captureIO(env);
      assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1]}', ...flags], io), 2, flags.join(" "));
      assert.match(io.stderr[0] ?? "", message);
      // A failed verification adds one hint line naming the flag; a usage error is one line.
      const hint = message.source.includes("bad_signature") ? [/check --server-key \/ SMCP_SERVER_KEY/] : [];
      assert.equal(io.stderr.length, 1 + hint.length, io.errText());
      for (const [i, h] of hint.entries()) assert.match(io.stderr[1 + i] ?? "", h);
      assert.deepEqual(io.stdout, []);
      assert.ok(!io.errText().includes(ED_SERVER_SECRET.slice(-20)), "no secret in the message");
      noStack(io.errText());
    }
  });
});

describe("smcp serve --alg ed25519 on first run", () => {
  it("creates a 0600 keyring with Ed25519 keys: the server side holds only the client's public key; call and tools use it", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "smcp-alg-"));
    const path = join(cwd, ".smcp", "keyring.json");
    const serve = await startCli(["serve", "--port", "0", "--alg", "ed25519", "--store", "memory"], { SMCP_CONFIG: path });
    try {
      const url = (/^listening on (\S+)$/.exec(serve.line) as RegExpExecArray)[1] as string;
      assert.equal(statSync(path).mode & 0o777, 0o600);
      // stderr is its own pipe: its lines may arrive after the stdout ready line.
      await until(() => serve.stderr().includes("created "), 5000, "serve's start lines");
      assert.match(serve.stderr(), /created .*keyring\.json \(mode 0600\): server 'smcp-local', client 'local', Ed25519 keys/);
      const file = JSON.parse(readFileSync(path, "utf8"));
      assert.deepEqual(Object.keys(file).sort(), [
        "client_secrets",
        "clients",
        "server_id",
        "server_key",
        "server_kid",
        "server_secret",
      ]);
      // Where it listens is in servers.json beside it, never in the keyring file.
      const servers = JSON.parse(readFileSync(join(dirname(path), "servers.json"), "utf8")).servers;
      assert.equal(servers["smcp-local"].url, `${url}/mcp`);
      assert.match(file.server_secret, /^ed25519-secret:[A-Za-z0-9_-]{43}$/);
      assert.equal(file.server_key, publicKeyOf(file.server_secret, "x"));
      assert.match(file.clients.local, /^ed25519:[A-Za-z0-9_-]{43}$/);
      assert.equal(publicKeyOf(file.client_secrets.local, "x"), file.clients.local);
      assert.ok(
        !serve.stderr().includes(file.server_secret.slice(15)) && !serve.stderr().includes(file.client_secrets.local.slice(15)),
      );
      const io = captureIO({ SMCP_CONFIG: path });
      assert.equal(await runCli(["call", "batch_sum", '{"numbers":[2,3]}', "--json", "--url", url], io), 0, io.errText());
      assert.match(JSON.parse(io.outText()).signature, /^[0-9a-f]{128}$/);
      const identity = captureIO({ SMCP_CONFIG: path });
      assert.equal(await runCli(["call", "server_identity", "--url", url], identity), 0, identity.errText());
      assert.deepEqual(JSON.parse(identity.outText()).capabilities.public_keys, [file.server_key]);
      assert.deepEqual(JSON.parse(identity.outText()).capabilities.signatures, ["ed25519"]);
      assert.equal(await runCli(["tools", "--url", url], captureIO({ SMCP_CONFIG: path })), 0);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
    // A second run reads the file, whose keys are Ed25519: --alg ed25519 is satisfied.
    const again = await startCli(["serve", "--port", "0", "--alg", "ed25519", "--store", "memory"], { SMCP_CONFIG: path });
    assert.equal(await again.stop(), 0);
  });
});

describe("smcp serve refuses Ed25519 mistakes at start, in one line", () => {
  it("no Ed25519 server key, a private key as a client record, --alg against HMAC keys, a bad --alg", async () => {
    const serve = (...flags: string[]) => ["serve", "--port", "0", "--store", "memory", "--config", NO_FILE, ...flags];
    const cases: [string[], RegExp][] = [
      [
        serve("--server-secret", SERVER_SECRET, "--client", `edge=${ED_CLIENT_PUBLIC}`),
        /^smcp: client 'edge' has an Ed25519 key but the server has no Ed25519 key to answer it with; .*smcp keygen --alg ed25519/,
      ],
      [
        serve("--server-secret", ED_SERVER_SECRET, "--client", `edge=${ED_CLIENT_SECRET}`),
        /^smcp: client 'edge' is given a private key \(ed25519-secret:…\); give the server only the client's public key ed25519:…/,
      ],
      [
        serve("--alg", "ed25519", "--server-secret", SERVER_SECRET, "--client", `${CLIENT_ID}=${CLIENT_SECRET}`),
        /^smcp: --alg ed25519 only chooses the keys of a new keyring file/,
      ],
      [serve("--alg", "rsa"), /^smcp: --alg must be hmac or ed25519$/],
      [serve("--server-secret", "ed25519-secret:short", "--client", `a=${ED_CLIENT_PUBLIC}`), /must be exactly 43 base64url/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIO();
      assert.equal(await runCli(argv, io), 2, argv.join(" "));
      assert.equal(io.stderr.length, 1, io.errText());
      assert.match(io.errText(), message);
      assert.ok(!io.errText().includes(ED_CLIENT_SECRET.slice(15)), "the private key is not echoed");
      noStack(io.errText());
    }
  });
});

describe("the keyring file: every form of the shared contract", () => {
  let running: RunningServer;
  before(async () => {
    running = await serveHttp(mixedPair().server, { port: 0 });
  });
  after(() => running.close());

  it("lists, the object form with settings, and JWKs; the caller picks the server key that fits its client", async () => {
    const path = writeFile("forms.json", {
      server_id: SERVER_ID,
      server_kid: "k-test",
      server_secret: [SERVER_SECRET, jwkOf(ED_SERVER_SECRET)],
      server_key: jwkOf(ED_SERVER_PUBLIC),
      clients: {
        [CLIENT_ID]: [CLIENT_SECRET],
        [ED_CLIENT_ID]: { keys: [jwkOf(ED_CLIENT_PUBLIC), generateEd25519().public], rate: 60 },
      },
      client_secrets: { [ED_CLIENT_ID]: jwkOf(ED_CLIENT_SECRET) },
      url: running.url,
    });
    for (const id of [ED_CLIENT_ID, CLIENT_ID]) {
      const io = captureIO();
      assert.equal(
        await runCli(["call", "batch_sum", '{"numbers":[4]}', "--json", "--config", path, "--client-id", id], io),
        0,
        io.errText(),
      );
      assert.match(JSON.parse(io.outText()).signature, id === ED_CLIENT_ID ? /^[0-9a-f]{128}$/ : /^[0-9a-f]{64}$/);
    }
    // serve reads the same file: JWKs become key strings, the object form gives its keys.
    const settings = await resolveServeSettings(["--config", path], captureIO());
    assert.ok(settings);
    assert.deepEqual(settings.serverSecrets, [SERVER_SECRET, ED_SERVER_SECRET]);
    assert.equal(settings.kid, "k-test");
    assert.equal(settings.clients.get(ED_CLIENT_ID)?.[0], ED_CLIENT_PUBLIC);
    assert.equal(settings.clients.get(ED_CLIENT_ID)?.length, 2);
    const ring = new Keyring({ serverId: settings.serverId, serverSecrets: settings.serverSecrets, clients: settings.clients });
    assert.equal(ring.client(ED_CLIENT_ID)?.alg, "ed25519");
  });

  it("an Ed25519 client without its private key, and malformed entries: one line naming the fix, exit 2", async () => {
    const base = { server_id: SERVER_ID, server_secret: SERVER_SECRET, server_key: ED_SERVER_PUBLIC, url: running.url };
    const cases: [unknown, RegExp][] = [
      [{ ...base, clients: { [ED_CLIENT_ID]: ED_CLIENT_PUBLIC } }, /missing secret for client 'edge-001': pass --client-secret/],
      [{ ...base, clients: { a: { limits: 1 } } }, /client 'a' is an object without "keys"/],
      [{ ...base, clients: { a: [] } }, /the key of client 'a' is an empty list/],
      [{ ...base, clients: { a: 1 } }, /the key of client 'a' must be a key string or an Ed25519 JWK object/],
      [
        { ...base, clients: { a: { ...jwkOf(ED_CLIENT_SECRET), x: jwkOf(ED_SERVER_PUBLIC).x } } },
        /"x" is not the public key of its "d"/,
      ],
      [{ ...base, clients: { a: CLIENT_SECRET }, server_key: { kty: "oct", k: "abc" } }, /only Ed25519 JWKs/],
      [{ ...base, clients: { a: CLIENT_SECRET }, client_secrets: [] }, /client_secrets must be an object/],
    ];
    for (const [value, message] of cases) {
      const path = writeFile("bad.json", value);
      const io = captureIO();
      assert.equal(await runCli(["call", "server_identity", "--config", path], io), 2, JSON.stringify(value));
      assert.match(io.errText(), message);
      assert.equal(io.stderr.length, 1);
      assert.ok(!io.errText().includes(ED_CLIENT_SECRET.slice(15)), "no secret in the message");
      noStack(io.errText());
    }
  });
});

describe("impersonation: a fake server that signs with the HMAC server secret every HMAC client holds", () => {
  let fake: Server;
  let url = "";
  let signer: Key = parseKey(SERVER_SECRET, "fake");
  before(async () => {
    fake = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const request = parseJson(Buffer.concat(chunks)) as { request_id: string };
        const fields = {
          request_id: request.request_id,
          ts_ms: Date.now(),
          ok: true,
          server_id: SERVER_ID,
          status: "ok",
          result: { count: 3, total: 1000000 },
          error: null,
        };
        res.writeHead(200, { "content-type": "application/json" }).end(signResponse(fields, signer).body);
      });
    });
    fake.listen(0, "127.0.0.1");
    await once(fake, "listening");
    url = `http://127.0.0.1:${(fake.address() as { port: number }).port}/mcp`;
  });
  after(() => new Promise<void>((resolve) => fake.close(() => resolve())));

  it("fools an HMAC client (what HMAC mode cannot prevent), and is refused by a client pinning the server's Ed25519 key", async () => {
    signer = parseKey(SERVER_SECRET, "fake");
    const fooled = captureIO(env);
    const hmacFlags = ["--url", url, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--server-id", SERVER_ID];
    assert.equal(
      await runCli(["call", "batch_sum", '{"numbers":[1,2,3]}', ...hmacFlags, "--server-secret", SERVER_SECRET], fooled),
      0,
    );
    assert.deepEqual(JSON.parse(fooled.outText()), { count: 3, total: 1000000 });
    const pinned = captureIO(env);
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1,2,3]}', ...edFlags(url)], pinned), 2);
    assert.match(pinned.errText(), /^smcp: bad_signature: /);
    assert.deepEqual(pinned.stdout, [], "no result printed");
    // Nor does a fake with an Ed25519 key of its own get through.
    signer = parseKey(generateEd25519().secret, "fake");
    const other = captureIO(env);
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1,2,3]}', ...edFlags(url)], other), 2);
    assert.match(other.errText(), /^smcp: bad_signature: /);
  });
});
