import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli } from "../src/cli/run.js";
import { type RunningServer, serveHttp } from "../src/http.js";
import { createServer, demoTools } from "../src/index.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

const BIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const noStack = (text: string) => assert.doesNotMatch(text, /\n\s+at |Error:\s*$/m);

describe("smcp CLI in process", () => {
  let running: RunningServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    const server = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
      tools: demoTools,
    });
    running = await serveHttp(server, { port: 0 });
    dir = mkdtempSync(join(tmpdir(), "smcp-cli-"));
    // A config path that does not exist, so nothing on this machine leaks into the test.
    env = { SMCP_CONFIG: join(dir, "none.json") };
  });
  after(() => running.close());

  const conn = () => connectionFlags(running.url);

  it("exit 0 for ok, 1 for a verified error, 2 for a failed verification", async () => {
    const ok = captureIO(env);
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1,2]}', ...conn()], ok), 0);
    assert.deepEqual(JSON.parse(ok.outText()), { count: 2, total: 3 });
    const failed = captureIO(env);
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[]}', ...conn()], failed), 1);
    assert.match(failed.errText(), /^error: bad_args: /);
    const unverifiable = captureIO(env);
    assert.equal(
      await runCli(
        ["call", "batch_sum", '{"numbers":[1]}', ...conn().slice(0, 8), "--server-secret", "not-the-server-secret!"],
        unverifiable,
      ),
      2,
    );
    assert.match(unverifiable.errText(), /^smcp: bad_signature: /);
    const down = captureIO(env);
    assert.equal(await runCli(["call", "server_identity", ...conn().slice(2), "--url", "http://127.0.0.1:9/mcp"], down), 2);
    assert.match(down.errText(), /^smcp: unavailable: could not reach http:\/\/127\.0\.0\.1:9\/mcp/);
    for (const io of [ok, failed, unverifiable, down]) noStack(io.errText());
  });

  it("--json prints the verified response object (exit code still follows ok)", async () => {
    const io = captureIO(env);
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1.5]}', "--json", ...conn()], io), 0);
    const response = JSON.parse(io.outText());
    assert.equal(response.ok, true);
    assert.match(response.signature, /^[0-9a-f]{64}$/);
    assert.deepEqual(response.result, { count: 1, total: 1.5 });
    const error = captureIO(env);
    assert.equal(await runCli(["call", "nope", "--json", ...conn()], error), 1);
    assert.equal(JSON.parse(error.outText()).result.code, "unknown_tool");
  });

  it("--wait polls a job to its end, with progress lines when not on a TTY", async () => {
    const io = captureIO(env);
    assert.equal(await runCli(["call", "start_long_task", '{"seconds":2,"payload":{"k":1}}', "--wait", ...conn()], io), 0);
    assert.deepEqual(JSON.parse(io.outText()), { k: 1 });
    assert.match(io.errText(), /job [0-9a-f-]{36} accepted/);
    assert.match(io.errText(), /\[#+-*\] 1\/2/);
  });

  it("missing secrets: one line naming the flag, the variable and the keyring file", async () => {
    const io = captureIO(env);
    assert.equal(await runCli(["call", "server_identity"], io), 2);
    assert.equal(io.stderr.length, 1);
    assert.match(io.errText(), /missing client id: pass --client-id ID or set SMCP_CLIENT_ID .*smcp serve/);
    const noSecret = captureIO(env);
    assert.equal(await runCli(["call", "server_identity", "--client-id", "x"], noSecret), 2);
    assert.match(noSecret.errText(), /missing secret for client 'x': pass --client-secret S or set SMCP_CLIENT_SECRET/);
  });

  it("bad usage is one line and exit 2, never a stack trace", async () => {
    const cases: [string[], RegExp][] = [
      [[], /usage: smcp COMMAND/],
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["call"], /missing TOOL/],
      [["call", "batch_sum", "{bad"], /ARGS_JSON is not valid JSON/],
      [["call", "batch_sum", "[1]"], /ARGS_JSON must be a JSON object/],
      [["call", "batch_sum", "{}", "extra"], /unexpected argument 'extra'/],
      [["call", "x", "--bogus"], /Unknown option '--bogus'.*smcp call --help/],
      [["call", "x", ...conn(), "--timeout-ms", "soon"], /--timeout-ms must be a whole number/],
      [["call", "x", ...conn().slice(2), "--url", "ftp://x"], /not an http\(s\) URL/],
      [["serve", "--port", "99999"], /--port must be a whole number from 0 to 65535/],
      [["serve", "--server-secret", "tiny", "--client", "a=0123456789abcdef0123"], /at least 16/],
      [["serve", "--client", "nosecret"], /is not ID=SECRET/],
      [["serve", "--server-secret", "0123456789abcdef0123"], /no clients: pass --client ID=SECRET/],
      [["keygen", "x"], /unexpected argument/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIO(env);
      assert.equal(await runCli(argv, io), 2, argv.join(" "));
      const text = argv.length === 0 ? io.outText() : io.errText();
      assert.match(text, message, argv.join(" "));
      noStack(text);
    }
  });

  it("flags win over environment, environment over the keyring file", async () => {
    const config = join(dir, "keyring.json");
    const wrong = "wrong-secret-wrong-secret";
    const fileWith = (serverSecret: string) => {
      writeFileSync(
        config,
        JSON.stringify({
          server_id: SERVER_ID,
          server_secret: serverSecret,
          clients: { [CLIENT_ID]: CLIENT_SECRET },
          url: running.url,
        }),
        { mode: 0o600 },
      );
      chmodSync(config, 0o600);
    };
    fileWith(SERVER_SECRET);
    assert.equal(await runCli(["call", "server_identity", "--config", config], captureIO()), 0, "file alone");
    fileWith(wrong);
    assert.equal(
      await runCli(["call", "server_identity", "--config", config], captureIO({ SMCP_SERVER_SECRET: SERVER_SECRET })),
      0,
      "env over file",
    );
    assert.equal(
      await runCli(
        ["call", "server_identity", "--config", config, "--server-secret", SERVER_SECRET],
        captureIO({ SMCP_SERVER_SECRET: wrong }),
      ),
      0,
      "flag over env",
    );
    assert.equal(
      await runCli(["call", "server_identity", "--config", config], captureIO({ SMCP_SERVER_SECRET: wrong })),
      2,
      "env wrong",
    );
    assert.equal(
      await runCli(["call", "server_identity"], captureIO({ SMCP_CONFIG: config, SMCP_SERVER_SECRET: SERVER_SECRET })),
      0,
      "SMCP_CONFIG",
    );
  });

  it("refuses a keyring file that others can read", async () => {
    const config = join(dir, "open.json");
    writeFileSync(config, "{}");
    chmodSync(config, 0o644);
    const io = captureIO();
    assert.equal(await runCli(["call", "server_identity", "--config", config], io), 2);
    assert.match(io.errText(), /readable by other users \(mode 644\); run: chmod 600/);
  });

  it("bad keyring files and store URLs: one line naming the fix, exit 2", async () => {
    const write = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text, { mode: 0o600 });
      chmodSync(path, 0o600);
      return path;
    };
    const files: [string, RegExp][] = [
      [write("broken.json", "{not json"), /is not valid JSON .*fix it or delete it/],
      [write("array.json", "[]"), /expected a JSON object/],
      [write("noid.json", JSON.stringify({ server_secret: "x", clients: {} })), /server_id must be a non-empty string/],
      [
        write("badclients.json", JSON.stringify({ server_id: "s", server_secret: "x", clients: { a: 1 } })),
        /the key of client 'a' must be a key string or an Ed25519 JWK object/,
      ],
      [write("dup.json", '{"server_id":"s","server_id":"t","server_secret":"x","clients":{}}'), /duplicate key/],
    ];
    for (const [config, message] of files) {
      const io = captureIO();
      assert.equal(await runCli(["call", "server_identity", "--config", config], io), 2, config);
      assert.match(io.errText(), message);
      noStack(io.errText());
    }
    const serve = (store: string) => [
      "serve",
      "--port",
      "0",
      "--store",
      store,
      "--server-secret",
      SERVER_SECRET,
      "--client",
      `${CLIENT_ID}=${CLIENT_SECRET}`,
    ];
    const stores: [string[], RegExp][] = [
      [
        serve("bogus://x"),
        /store 'bogus:\/\/x' is not supported; use memory, sqlite:PATH, redis:\/\/HOST:PORT\[\/DB\], redis\+cluster:\/\/HOST:PORT,… or postgres:\/\/USER@HOST:PORT\/DB/,
      ],
      [serve("sqlite:"), /sqlite: needs a file/],
      [serve("redis://:hunter2secret@127.0.0.1:9/0"), /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:9\/0/],
      [["worker", "--store", "memory"], /a worker needs a shared store/],
      [["worker"], /missing store: pass --store/],
    ];
    for (const [argv, message] of stores) {
      const io = captureIO(env);
      assert.equal(await runCli(argv, io), 2, argv.join(" "));
      assert.match(io.errText(), message, argv.join(" "));
      assert.doesNotMatch(io.errText(), /hunter2secret/, "no password in the message");
      noStack(io.errText());
    }
  });

  it("tools lists tools as a table (protocol tools with --all, schemas with --json); keygen prints a fresh 32-byte secret", async () => {
    const io = captureIO(env);
    assert.equal(await runCli(["tools", ...conn()], io), 0);
    const lines = io.outText().split("\n");
    assert.match(lines[0] ?? "", /^TOOL +KIND +ARGUMENTS +DESCRIPTION$/);
    assert.match(io.outText(), /^batch_sum +sync +numbers: number\[\] +\S/m);
    assert.match(io.outText(), /^start_long_task +job +seconds: integer, idempotency_key\?: string, payload\?: object +\S/m);
    assert.doesNotMatch(io.outText(), /^poll_job /m, "protocol tools only with --all");
    assert.match(io.outText(), /^\(5 protocol tools not shown/m);
    const all = captureIO(env);
    assert.equal(await runCli(["tools", "--all", ...conn()], all), 0);
    assert.match(all.outText(), /^poll_job +sync +job_id: string/m);
    const json = captureIO(env);
    assert.equal(await runCli(["tools", "--json", ...conn()], json), 0);
    assert.match(json.outText(), /"numbers":\{"description":"[^"]*","items":\{"type":"number"\},"minItems":1,"type":"array"\}/);
    const a = captureIO();
    const b = captureIO();
    await runCli(["keygen"], a);
    await runCli(["keygen"], b);
    assert.match(a.outText(), /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.outText(), b.outText());
  });
});

describe("smcp serve (the real binary)", () => {
  it("the built bin is executable, so `npx smcp` runs it", () => {
    assert.equal(statSync(BIN).mode & 0o111, 0o111);
  });

  it("with no secrets creates a 0600 keyring, prints one listening line, answers calls, stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smcp-serve-"));
    const child = spawn(process.execPath, [BIN, "serve", "--port", "0"], {
      cwd: dir,
      env: { PATH: process.env.PATH },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const match = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    assert.ok(match, line);
    const keyring = join(dir, ".smcp", "keyring.json");
    assert.equal(statSync(keyring).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, ".smcp")).mode & 0o777, 0o700);
    assert.match(stderr, /created .*keyring\.json \(mode 0600\)/);
    assert.doesNotMatch(stderr, /server_secret|[A-Za-z0-9_-]{43}/, "no secret in the log");
    const io = captureIO({ SMCP_CONFIG: keyring });
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[2,3]}', "--url", match[1] as string], io), 0, io.errText());
    assert.deepEqual(JSON.parse(io.outText()), { count: 2, total: 5 });
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number];
    assert.equal(code, 0);
    // Not a TTY: JSON log lines, one per request (never its arguments), then the graceful stop.
    const lines = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const request = lines.find((l) => l.msg === "request");
    assert.deepEqual(
      { client_id: request?.client_id, tool: request?.tool, code: request?.code, http_status: request?.http_status },
      { client_id: "local", tool: "batch_sum", code: "ok", http_status: 200 },
    );
    assert.equal(typeof request?.duration_ms, "number");
    assert.doesNotMatch(stderr, /"numbers"/, "argument values are never logged");
    assert.deepEqual(
      lines.slice(-2).map((l) => l.msg),
      ["SIGTERM: finishing in-flight requests", "stopped"],
    );
  });

  it("a port in use is one line and exit 2", async () => {
    const server = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
      tools: demoTools,
    });
    const running = await serveHttp(server, { port: 0 });
    const port = new URL(running.origin).port;
    const child = spawn(
      process.execPath,
      [
        BIN,
        "serve",
        "--port",
        port,
        "--store",
        "memory",
        "--server-secret",
        SERVER_SECRET,
        "--client",
        `${CLIENT_ID}=${CLIENT_SECRET}`,
      ],
      {
        env: { PATH: process.env.PATH },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const [code] = (await once(child, "exit")) as [number];
    await running.close();
    assert.equal(code, 2);
    assert.equal(stderr, `smcp: port ${port} is in use; pick another with --port N\n`);
  });
});
