import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  DEFAULT_KEYRING_PATH,
  DEFAULT_SERVER_ID,
  DEFAULT_URL,
  type KeyringFile,
  keyringPath,
  readKeyringFile,
} from "../client/keyring-file.js";
import type { JsonValue } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { generateEd25519 } from "../protocol/keys.js";
import { isJsonObject } from "../protocol/messages.js";
import { parseJson } from "../protocol/parse.js";
import type { ClientLimits } from "../server/limits.js";

export { DEFAULT_KEYRING_PATH, DEFAULT_SERVER_ID, DEFAULT_URL, type KeyringFile, keyringPath, readKeyringFile };

/** The algorithms a new keyring file can be made with (`--alg`). */
export type KeyringAlgorithm = "hmac" | "ed25519";

/** A new random secret: 32 bytes, base64url (43 characters), never starting with `-`. */
export function newSecret(): string {
  // One in 64 would begin with "-", which a command line takes for a flag (`--server-secret -x…`).
  for (;;) {
    const secret = randomBytes(32).toString("base64url");
    if (!secret.startsWith("-")) return secret;
  }
}

/**
 * Creates a keyring file (mode 0600, its folder 0700) with a random server key
 * and one client 'local'. With `alg: "ed25519"` the server side holds its
 * private key and the client's public key only; the caller side gets the
 * client's private key (`client_secrets`) and the server's public key (`server_key`).
 */
export function createKeyringFile(path: string, options: { serverId?: string; alg?: KeyringAlgorithm } = {}): KeyringFile {
  const server = options.alg === "ed25519" ? generateEd25519() : undefined;
  const client = options.alg === "ed25519" ? generateEd25519() : undefined;
  const file: KeyringFile = {
    server_id: options.serverId ?? DEFAULT_SERVER_ID,
    server_secret: [server ? server.secret : newSecret()],
    server_key: server ? [server.public] : [],
    server_kid: `k-${randomBytes(4).toString("hex")}`,
    clients: new Map([["local", [client ? client.public : newSecret()]]]),
    client_secrets: new Map(client ? [["local", client.secret]] : []),
    scopes: new Map(),
  };
  // Written in the contract's plainest forms: one key is a string, not a list.
  const json: Record<string, unknown> = {
    server_id: file.server_id,
    server_kid: file.server_kid,
    server_secret: file.server_secret[0],
    ...(server ? { server_key: server.public } : {}),
    clients: Object.fromEntries([...file.clients].map(([id, keys]) => [id, keys[0]])),
    ...(client ? { client_secrets: Object.fromEntries(file.client_secrets) } : {}),
  };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return file;
}

/**
 * Parses `id=key,id2=key2` (SMCP_CLIENTS) or repeated `--client id=key`. An id
 * given twice gets both keys (rotation: any live key verifies).
 */
export function parseClientList(items: readonly string[], source: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const item of items) {
    const at = item.indexOf("=");
    // Never quote the item: it holds a secret.
    if (at <= 0) throw new SmcpUsageError(`${source}: an entry is not ID=SECRET (or ID=ed25519:PUBLIC)`);
    const id = item.slice(0, at);
    const value = item.slice(at + 1);
    // ID=@PATH: the key is in a file (a mounted secret), not on the command line where `ps` shows it.
    const key = value.startsWith("@") ? secretFile(value.slice(1), `${source} ${id}=@PATH`) : value;
    map.set(id, [...(map.get(id) ?? []), key]);
  }
  return map;
}

/**
 * A secret read from a file: its content without the trailing newline. A
 * missing or unreadable file names the flag and the path (never a content);
 * a file other users may read is refused, as ssh refuses such a key.
 */
export function secretFile(path: string, flag: string): string {
  let text: string;
  try {
    const mode = statSync(path).mode & 0o777;
    if (process.platform !== "win32" && (mode & 0o077) !== 0) {
      throw new SmcpUsageError(`${flag}: ${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    }
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof SmcpUsageError) throw error;
    throw new SmcpUsageError(`${flag}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret === "") throw new SmcpUsageError(`${flag}: ${path} is empty`);
  return secret;
}

/** Parses a whole number option, naming it in the error. */
export function parseInteger(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new SmcpUsageError(`${name} must be a whole number from ${min} to ${max}, not '${value.slice(0, 40)}'`);
  }
  return n;
}

/**
 * A rate as flags and the keyring file write it: `100/s`, `6000/m`,
 * `100000/h`, or a bare number per second; `0` or `off` turns it off.
 * Returns requests per second.
 */
export function parseRate(text: string, name: string): number {
  if (text === "off") return 0;
  const match = /^(\d+(?:\.\d+)?)(?:\/(s|m|h))?$/.exec(text.trim());
  if (!match) throw new SmcpUsageError(`${name} must look like 100/s, 6000/m or off, not '${text.slice(0, 40)}'`);
  const per = { s: 1, m: 60, h: 3600 }[(match[2] ?? "s") as "s" | "m" | "h"];
  return Number(match[1]) / per;
}

/**
 * Per-client limit overrides from the keyring file: a client entry in its
 * object form, `{"keys": …, "rate": "50/s", "burst": 100, "max_open_jobs": 10,
 * "max_stored_bytes": 1000000}`. Entries that are just keys have none.
 */
export function readClientLimits(path: string): Map<string, ClientLimits> {
  const limits = new Map<string, ClientLimits>();
  if (!existsSync(path)) return limits;
  let value: JsonValue;
  try {
    value = parseJson(readFileSync(path));
  } catch {
    return limits; // readKeyringFile reports a broken file
  }
  const clients = isJsonObject(value) ? value.clients : undefined;
  if (!isJsonObject(clients)) return limits;
  const bad = (id: string, what: string) =>
    new SmcpUsageError(`${path}: client '${id}': ${what}; fix it or delete the file to start over`);
  for (const [id, entry] of Object.entries(clients)) {
    if (!isJsonObject(entry)) continue;
    const out: ClientLimits = {};
    const { rate, burst, max_open_jobs, max_stored_bytes } = entry;
    if (rate !== undefined) out.rate = typeof rate === "number" ? rate : parseRate(String(rate), `${path}: client '${id}' rate`);
    for (const [field, key] of [
      [burst, "burst"],
      [max_open_jobs, "maxOpenJobs"],
      [max_stored_bytes, "maxStoredBytes"],
    ] as const) {
      if (field === undefined) continue;
      if (typeof field !== "number" || !(field >= 0)) throw bad(id, `${key} must be a number >= 0`);
      out[key] = field;
    }
    if (Object.keys(out).length > 0) limits.set(id, out);
  }
  return limits;
}
