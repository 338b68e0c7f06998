/**
 * Sandbox target: the CLI's readers of outside text: `smcp call TOOL
 * ARGS_JSON` (run in process through `runCli`) and the keyring file
 * (`readKeyringFile`).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readKeyringFile } from "../../../src/cli/config.js";
import { runCli } from "../../../src/cli/run.js";
import { captureIO } from "../../cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "../../helpers.js";
import { serveSandbox } from "../child.js";

/** What `smcp call` did with an ARGS_JSON. */
export interface CliRun {
  exit: number;
  stdout: string;
  stderr: string;
}

/** What reading a keyring file gave. */
export interface KeyringRead {
  read: { ok: true; serverId: string; clients: string[] } | { ok: false; name: string; message: string };
}

const dir = mkdtempSync(join(tmpdir(), "smcp-fuzz-cli-"));
// A keyring file that names no keys: every setting comes from the flags (a named file must exist).
const EMPTY_KEYRING = join(dir, "empty.json");
writeFileSync(EMPTY_KEYRING, '{"server_id":"none","clients":{}}\n', { mode: 0o600 });
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Where nothing listens: a call that gets past ARGS_JSON fails at once as `unavailable`. */
export const DEAD_URL = "http://127.0.0.1:1/mcp";

function failure(error: unknown): { ok: false; name: string; message: string } {
  const e = error instanceof Error ? error : new Error(String(error));
  return { ok: false, name: e.name, message: e.message };
}

serveSandbox({
  argsJson: async (text: string): Promise<CliRun> => {
    const io = captureIO({});
    const flags = ["--url", DEAD_URL, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET];
    flags.push("--server-id", SERVER_ID, "--server-secret", SERVER_SECRET, "--config", EMPTY_KEYRING);
    const exit = await runCli(["call", ...flags, "--timeout-ms", "5000", "--", "batch_sum", text], io);
    return { exit, stdout: io.outText(), stderr: io.errText() };
  },
  keyring: (contents: Uint8Array): KeyringRead => {
    const path = join(dir, `keyring-${n++}.json`);
    writeFileSync(path, contents, { mode: 0o600 });
    chmodSync(path, 0o600);
    let read: KeyringRead["read"];
    try {
      const file = readKeyringFile(path);
      read = file ? { ok: true, serverId: file.server_id, clients: [...file.clients.keys()] } : failure(new Error("no file"));
    } catch (error) {
      read = failure(error);
    }
    rmSync(path, { force: true });
    return { read };
  },
});
