import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { SmcpUsageError } from "../protocol/errors.js";
import { jwkToKeyString } from "../protocol/keys.js";
import { isJsonObject } from "../protocol/messages.js";
import { readSecretJson } from "../protocol/secret-file.js";

// The local keyring file (`.smcp/keyring.json`): the contract between `smcp serve`, which may
// create it, and every caller in the folder (`smcp call`, `clientFromEnv`, Python's
// `Client.from_env`, the console), which read it.

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
  /** serve: each client's scopes (SPEC §9), for the clients whose object form gives them. */
  scopes: Map<string, string[]>;
  url?: string;
  store?: string;
}

/** The keyring path in force: `--config`, then `SMCP_CONFIG`, then `.smcp/keyring.json`. */
export function keyringPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env.SMCP_CONFIG ?? DEFAULT_KEYRING_PATH);
}

/** One key as the file gives it: a string, or an Ed25519 JWK object (normalized to its string). */
function keyText(value: unknown, what: string, bad: (what: string) => SmcpUsageError): string {
  if (typeof value === "string") return value;
  // The client registry's key form (schemas/clients.schema.json): { "id", "secret" | "public" | "jwk" }.
  if (isJsonObject(value) && typeof value.id === "string" && !("kty" in value)) {
    if (typeof value.secret === "string") return value.secret;
    if (typeof value.public === "string") return value.public;
    if (value.jwk !== undefined) return keyText(value.jwk, what, bad);
  }
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

// Every top-level key the keyring file may have.
const KEYRING_KEYS = new Set([
  "server_id",
  "server_kid",
  "server_secret",
  "server_key",
  "clients",
  "client_secrets",
  "url",
  "store",
]);
// Every key a client's object form may have (its keys, and its limits).
// The registry's names (`limits`, `disabled`; schemas/clients.schema.json) and the older top-level limits.
const CLIENT_KEYS = new Set(["keys", "scopes", "limits", "disabled", "rate", "burst", "max_open_jobs", "max_stored_bytes"]);

/** Reads the keyring file, or undefined when there is none. Refuses one readable by others. */
export function readKeyringFile(path: string): KeyringFile | undefined {
  if (!existsSync(path)) return undefined;
  const value = readSecretJson(path, "; fix it or delete it to start over");
  const bad = (what: string) => new SmcpUsageError(`${path}: ${what}; fix it or delete the file to start over`);
  if (!isJsonObject(value)) throw bad("expected a JSON object");
  // A key the format does not have is an error, naming the key and the file: a misspelt setting
  // (or one from another version) must not be quietly ignored.
  for (const key of Object.keys(value)) {
    if (!KEYRING_KEYS.has(key)) throw bad(`unknown key "${key}" (the file may have ${[...KEYRING_KEYS].join(", ")})`);
  }
  const { server_id, server_secret, server_key, server_kid, clients, client_secrets, url, store } = value;
  if (typeof server_id !== "string" || server_id === "") throw bad("server_id must be a non-empty string");
  if (!isJsonObject(clients)) throw bad("clients must be an object of id -> key");
  const map = new Map<string, string[]>();
  const scopes = new Map<string, string[]>();
  for (const [id, entry] of Object.entries(clients)) {
    const what = `client '${id}'`;
    // The object form carries per-client settings beside its keys; a reader takes `keys` and leaves the rest.
    if (isJsonObject(entry) && !("kty" in entry)) {
      if (!("keys" in entry)) throw bad(`${what} is an object without "keys"; give its key(s) there`);
      for (const key of Object.keys(entry)) {
        if (!CLIENT_KEYS.has(key))
          throw bad(`${what} has an unknown key "${key}" (a client may have ${[...CLIENT_KEYS].join(", ")})`);
      }
      map.set(id, keyList(entry.keys, `the keys of ${what}`, bad));
      if (entry.scopes !== undefined) {
        if (!Array.isArray(entry.scopes) || !entry.scopes.every((s) => typeof s === "string")) {
          throw bad(`${what}: "scopes" must be a list of strings (tools:<pattern>, jobs:all)`);
        }
        scopes.set(id, entry.scopes as string[]);
      }
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
    scopes,
  };
  if (typeof server_kid === "string") file.server_kid = server_kid;
  if (typeof url === "string") file.url = url;
  if (typeof store === "string") file.store = store;
  return file;
}
