import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type JsonValue, parseJson } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";

/** Default location of the local keyring/config file. */
export const DEFAULT_KEYRING_PATH = ".smcp/keyring.json";
/** Default server URL for `smcp call`. */
export const DEFAULT_URL = "http://127.0.0.1:8787/mcp";

/** The local keyring file: a server, its clients, and where it listens. */
export interface KeyringFile {
  server_id: string;
  server_secret: string;
  server_kid?: string;
  clients: Map<string, string>;
  url?: string;
  store?: string;
}

/** A new random secret: 32 bytes, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The keyring path in force: `--config`, then `SMCP_CONFIG`, then `.smcp/keyring.json`. */
export function keyringPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env.SMCP_CONFIG ?? DEFAULT_KEYRING_PATH);
}

/** Reads the keyring file, or undefined when there is none. Refuses one readable by others. */
export function readKeyringFile(path: string): KeyringFile | undefined {
  if (!existsSync(path)) return undefined;
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw new SmcpUsageError(`${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
  let value: JsonValue;
  try {
    value = parseJson(readFileSync(path));
  } catch (error) {
    throw new SmcpUsageError(`${path} is not valid JSON (${(error as Error).message}); fix it or delete it to start over`);
  }
  const bad = (what: string) => new SmcpUsageError(`${path}: ${what}; fix it or delete the file to start over`);
  if (!isJsonObject(value)) throw bad("expected a JSON object");
  const { server_id, server_secret, server_kid, clients, url, store } = value;
  if (typeof server_id !== "string" || server_id === "") throw bad("server_id must be a non-empty string");
  if (typeof server_secret !== "string") throw bad("server_secret must be a string");
  if (!isJsonObject(clients)) throw bad("clients must be an object of id -> secret");
  const map = new Map<string, string>();
  for (const [id, secret] of Object.entries(clients)) {
    if (typeof secret !== "string") throw bad(`the secret of client '${id}' must be a string`);
    map.set(id, secret);
  }
  const file: KeyringFile = { server_id, server_secret, clients: map };
  if (typeof server_kid === "string") file.server_kid = server_kid;
  if (typeof url === "string") file.url = url;
  if (typeof store === "string") file.store = store;
  return file;
}

/** Creates a keyring file (mode 0600, its folder 0700) with a random server secret and one client. */
export function createKeyringFile(path: string, options: { host: string; port: number; serverId?: string }): KeyringFile {
  const file: KeyringFile = {
    server_id: options.serverId ?? "smcp-local",
    server_secret: newSecret(),
    server_kid: `k-${randomBytes(4).toString("hex")}`,
    clients: new Map([["local", newSecret()]]),
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}/mcp`,
  };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const text = `${JSON.stringify({ ...file, clients: Object.fromEntries(file.clients) }, null, 2)}\n`;
  writeFileSync(path, text, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return file;
}

/** Parses `id=secret,id2=secret2` (SMCP_CLIENTS) or repeated `--client id=secret`. */
export function parseClientList(items: readonly string[], source: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of items) {
    const at = item.indexOf("=");
    if (at <= 0) throw new SmcpUsageError(`${source}: '${item.slice(0, 40)}' is not ID=SECRET`);
    const id = item.slice(0, at);
    if (map.has(id)) throw new SmcpUsageError(`${source}: client '${id}' is given twice`);
    map.set(id, item.slice(at + 1));
  }
  return map;
}

/** Parses a whole number option, naming it in the error. */
export function parseInteger(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new SmcpUsageError(`${name} must be a whole number from ${min} to ${max}, not '${value.slice(0, 40)}'`);
  }
  return n;
}
