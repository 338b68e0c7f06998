import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { JsonValue } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { generateEd25519, jwkToKeyString } from "../protocol/keys.js";
import { isJsonObject } from "../protocol/messages.js";
import { parseJson } from "../protocol/parse.js";
import type { ClientLimits } from "../server/limits.js";

/** Default location of the local keyring/config file. */
export const DEFAULT_KEYRING_PATH = ".smcp/keyring.json";
/** Default server URL for `smcp call`. */
export const DEFAULT_URL = "http://127.0.0.1:8787/mcp";
/** Default server id, shared by `smcp serve` and the commands that call it. */
export const DEFAULT_SERVER_ID = "smcp-local";

/** The local keyring file (the shared contract): a server, its clients, and where it listens. Keys are SPEC §7 strings. */
export interface KeyringFile {
  server_id: string;
  /** Label of the server's first signing key. */
  server_kid?: string;
  /** serve: the signing keys, HMAC secrets and/or `ed25519-secret:` keys (empty when absent). */
  server_secret: string[];
  /** callers: the server's pinned Ed25519 public keys (empty when absent). */
  server_key: string[];
  /** serve: each client's live keys, HMAC secrets or `ed25519:` public keys. */
  clients: Map<string, string[]>;
  /** callers: an Ed25519 client's private key. */
  client_secrets: Map<string, string>;
  url?: string;
  store?: string;
}

/** The algorithms a new keyring file can be made with (`--alg`). */
export type KeyringAlgorithm = "hmac" | "ed25519";

/** A new random secret: 32 bytes, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The keyring path in force: `--config`, then `SMCP_CONFIG`, then `.smcp/keyring.json`. */
export function keyringPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env.SMCP_CONFIG ?? DEFAULT_KEYRING_PATH);
}

/** One key as the file gives it: a string, or an Ed25519 JWK object (normalized to its string). */
function keyText(value: unknown, what: string, bad: (what: string) => SmcpUsageError): string {
  if (typeof value === "string") return value;
  if (isJsonObject(value) && "kty" in value) {
    try {
      return jwkToKeyString(value, what);
    } catch (error) {
      throw bad((error as Error).message);
    }
  }
  throw bad(`${what} must be a key string or an Ed25519 JWK object`);
}

/** A key or a list of keys (rotation). */
function keyList(value: unknown, what: string, bad: (what: string) => SmcpUsageError): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw bad(`${what} is an empty list; give at least one key`);
  return list.map((item, i) => keyText(item, list.length > 1 ? `${what} #${i + 1}` : what, bad));
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
  const { server_id, server_secret, server_key, server_kid, clients, client_secrets, url, store } = value;
  if (typeof server_id !== "string" || server_id === "") throw bad("server_id must be a non-empty string");
  if (!isJsonObject(clients)) throw bad("clients must be an object of id -> key");
  const map = new Map<string, string[]>();
  for (const [id, entry] of Object.entries(clients)) {
    const what = `client '${id}'`;
    // The object form carries per-client settings beside its keys; a reader takes `keys` and leaves the rest.
    if (isJsonObject(entry) && !("kty" in entry)) {
      if (!("keys" in entry)) throw bad(`${what} is an object without "keys"; give its key(s) there`);
      map.set(id, keyList(entry.keys, `the keys of ${what}`, bad));
    } else {
      map.set(id, keyList(entry, `the key of ${what}`, bad));
    }
  }
  const secrets = new Map<string, string>();
  if (client_secrets !== undefined) {
    if (!isJsonObject(client_secrets)) throw bad("client_secrets must be an object of id -> ed25519-secret:…");
    for (const [id, entry] of Object.entries(client_secrets)) secrets.set(id, keyText(entry, `client_secrets '${id}'`, bad));
  }
  const file: KeyringFile = {
    server_id,
    server_secret: server_secret === undefined ? [] : keyList(server_secret, "server_secret", bad),
    server_key: server_key === undefined ? [] : keyList(server_key, "server_key", bad),
    clients: map,
    client_secrets: secrets,
  };
  if (typeof server_kid === "string") file.server_kid = server_kid;
  if (typeof url === "string") file.url = url;
  if (typeof store === "string") file.store = store;
  return file;
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
    map.set(id, [...(map.get(id) ?? []), item.slice(at + 1)]);
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

/**
 * Records in the keyring file where the server now listens (`url`), so
 * callers in this folder find a server started on another port. Other fields
 * are kept as they are; the file is replaced atomically, mode 0600.
 */
export function recordUrl(path: string, url: string): void {
  let value: JsonValue;
  try {
    value = parseJson(readFileSync(path));
  } catch {
    return; // not ours to repair here: readKeyringFile reports a broken file
  }
  if (!isJsonObject(value) || value.url === url) return;
  value.url = url;
  let text: string;
  try {
    text = JSON.stringify(value, null, 2);
  } catch {
    return; // an integer beyond 2^53 (a bigint) cannot be written back unchanged: leave the file as it is
  }
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${text}\n`, { mode: 0o600 });
  renameSync(temporary, path);
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
