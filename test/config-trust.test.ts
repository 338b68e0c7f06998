/**
 * Config you can trust (issue 21): serve never rewrites a keyring file (where
 * it listens goes in .smcp/servers.json by server id), a second server in the
 * folder can't capture the first one's callers, a failed start leaves nothing
 * behind, unknown keys and a missing --config file are errors that say so,
 * and `clientFromEnv` resolves like `smcp call`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { clientFromEnv } from "../src/index.js";
import { until } from "./helpers.js";
import { BIN, type Child, start } from "./process-helpers.js";

const run = promisify(execFile);
const dirs: string[] = [];
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), "smcp-config-"));
  dirs.push(dir);
  return dir;
}

/** `smcp serve` with its working directory in `dir`. */
async function serveIn(dir: string, args: string[]): Promise<Child> {
  const child = await start(
    process.execPath,
    [BIN, "serve", "--port", "0", "--store", "memory", ...args],
    { HOME: dir, PWD: dir },
    dir,
  );
  children.push(child);
  return child;
}

async function cli(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe("config you can trust", () => {
  it("serve creates the keyring once and never rewrites it; where it listens goes in servers.json; callers find it", async () => {
    const dir = folder();
    const first = await serveIn(dir, []);
    const keyring = readFileSync(join(dir, ".smcp/keyring.json"), "utf8");
    assert.doesNotMatch(keyring, /"url"/, "no url in the keyring file");
    const servers = JSON.parse(readFileSync(join(dir, ".smcp/servers.json"), "utf8"));
    assert.equal(servers.servers["smcp-local"].url, `${first.line.replace(/^listening on /, "")}/mcp`);
    const called = await cli(dir, ["call", "batch_sum", '{"numbers":[2,3]}']);
    assert.equal(called.code, 0, called.stderr);
    assert.deepEqual(JSON.parse(called.stdout), { count: 2, total: 5 });
    // The library's twin resolves the same way, from this folder's files.
    const client = clientFromEnv({ config: join(dir, ".smcp/keyring.json") }, { PATH: process.env.PATH ?? "" });
    assert.deepEqual(await client.call("batch_sum", { numbers: [1] }), { count: 1, total: 1 });
    await first.stop();
    assert.equal(readFileSync(join(dir, ".smcp/keyring.json"), "utf8"), keyring, "the keyring file is as it was");
    assert.deepEqual(JSON.parse(readFileSync(join(dir, ".smcp/servers.json"), "utf8")).servers, {}, "its entry is gone");
  });

  it("a second server with the same id in the folder does not capture the first one's callers", async () => {
    const dir = folder();
    const first = await serveIn(dir, []);
    const second = await serveIn(dir, ["--no-demo-tools", "--tools", join(process.cwd(), "examples/crunch.js")]);
    const firstUrl = `${first.line.replace(/^listening on /, "")}/mcp`;
    assert.equal(JSON.parse(readFileSync(join(dir, ".smcp/servers.json"), "utf8")).servers["smcp-local"].url, firstUrl);
    // stderr is its own pipe: its lines may arrive after the stdout ready line.
    await until(() => /another server with this id already listens/.test(second.stderr()), 5000, "the warning");
    const called = await cli(dir, ["call", "batch_sum", '{"numbers":[4]}']);
    assert.equal(called.code, 0, called.stderr);
  });

  it("serve --config FILE leaves a hand-written file byte for byte as it was", async () => {
    const dir = folder();
    const path = join(dir, "kr.json");
    const text = `{
  "server_id": "hand",
     "server_secret": "0123456789abcdef0123456789",
  "clients": { "me": "abcdef0123456789abcdef0123" }
}
`;
    writeFileSync(path, text, { mode: 0o600 });
    const child = await serveIn(dir, ["--config", path]);
    await child.stop();
    assert.equal(readFileSync(path, "utf8"), text);
  });

  it("a failed start leaves nothing behind (no keyring file, no servers.json)", async () => {
    const dir = folder();
    const failed = await cli(dir, ["serve", "--port", "0", "--store", "memory", "--tools", join(dir, "missing.js")]);
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /cannot find tool module/);
    assert.equal(existsSync(join(dir, ".smcp")), false);
  });

  it("unknown keys name the key, the client and the file; a missing --config file says so", async () => {
    const dir = folder();
    const path = join(dir, "kr.json");
    writeFileSync(path, '{"server_id":"s","server_secret":"0123456789abcdef0123","clients":{}, "tools": []}', { mode: 0o600 });
    const top = await cli(dir, ["serve", "--config", path, "--store", "memory"]);
    assert.match(top.stderr, new RegExp(`${path.replaceAll(".", "\\.")}: unknown key "tools"`));
    writeFileSync(
      path,
      '{"server_id":"s","server_secret":"0123456789abcdef0123","clients":{"alice":{"keys":"abcdef0123456789abcd","tools":["batch_sum"]}}}',
      { mode: 0o600 },
    );
    const client = await cli(dir, ["serve", "--config", path, "--store", "memory"]);
    assert.match(client.stderr, /client 'alice' has an unknown key "tools"/);
    assert.match(client.stderr, new RegExp(path.replaceAll(".", "\\.")));
    const missing = await cli(dir, ["call", "server_identity", "--config", join(dir, "nope.json")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json does not exist/);
  });
});

describe("secrets as files", () => {
  it("--server-secret-file, SMCP_SERVER_SECRET_FILE and --client ID=@PATH serve a caller that signs with the same secrets", async () => {
    const dir = folder();
    const serverFile = join(dir, "server.secret");
    const clientFile = join(dir, "alice.secret");
    writeFileSync(serverFile, "server-secret-from-a-file-0123\n", { mode: 0o600 });
    writeFileSync(clientFile, "alice-secret-from-a-file-0123\n", { mode: 0o600 });
    for (const flags of [
      ["--server-secret-file", serverFile, "--client", `alice=@${clientFile}`],
      ["--client", `alice=@${clientFile}`],
    ]) {
      const child = await start(
        process.execPath,
        [BIN, "serve", "--port", "0", "--store", "memory", "--server-id", "files", ...flags],
        flags.length === 2 ? { SMCP_SERVER_SECRET_FILE: serverFile } : {},
        dir,
      );
      children.push(child);
      const url = `${child.line.replace(/^listening on /, "")}/mcp`;
      const called = await cli(dir, [
        "call",
        "batch_sum",
        '{"numbers":[1]}',
        "--url",
        url,
        "--client-id",
        "alice",
        "--client-secret",
        "alice-secret-from-a-file-0123",
        "--server-id",
        "files",
        "--server-secret",
        "server-secret-from-a-file-0123",
      ]);
      assert.equal(called.code, 0, called.stderr);
      await child.stop();
    }
  });

  it("a missing or world-readable secret file is a clear error naming the flag and the path, never the content", async () => {
    const dir = folder();
    const missing = await cli(dir, [
      "serve",
      "--store",
      "memory",
      "--server-secret-file",
      join(dir, "nope"),
      "--client",
      "a=0123456789abcdef0123",
    ]);
    assert.match(missing.stderr, /--server-secret-file: cannot read .*nope \(ENOENT\)/);
    const open = join(dir, "open.secret");
    writeFileSync(open, "a-secret-everyone-can-read-0123\n", { mode: 0o644 });
    const readable = await cli(dir, [
      "serve",
      "--store",
      "memory",
      "--server-secret",
      "0123456789abcdef0123",
      "--client",
      `a=@${open}`,
    ]);
    assert.match(readable.stderr, /is readable by other users \(mode 644\); run: chmod 600/);
    assert.doesNotMatch(readable.stderr, /a-secret-everyone-can-read/);
  });
});
