/**
 * Sandbox target: the CLI's readers of outside text: `smcp call TOOL
 * ARGS_JSON` (run in process through `runCli`) and the keyring file
 * (`readKeyringFile`, `recordUrl`).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readKeyringFile, recordUrl } from "../../../src/cli/config.js";
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

/** What reading a keyring file gave, and what recordUrl then did. */
export interface KeyringRead {
  read: { ok: true; serverId: string; clients: string[] } | { ok: false; name: string; message: string };
  record: { ok: true; url: string | undefined } | { ok: false; name: string; message: string };
}

const dir = mkdtempSync(join(tmpdir(), "smcp-fuzz-cli-"));
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
    flags.push("--server-id", SERVER_ID, "--server-secret", SERVER_SECRET, "--config", join(dir, "none.json"));
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
    let record: KeyringRead["record"];
    try {
      recordUrl(path, "http://127.0.0.1:9/mcp");
      let url: string | undefined;
      try {
        url = (JSON.parse(readFileSync(path, "utf8")) as { url?: string }).url;
      } catch {
        url = undefined;
      }
      record = { ok: true, url };
    } catch (error) {
      record = failure(error);
    }
    rmSync(path, { force: true });
    return { read, record };
  },
});
