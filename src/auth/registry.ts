import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "ajv";
import type { JsonValue } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { jwkToKeyString } from "../protocol/keys.js";
import { isJsonObject } from "../protocol/messages.js";
import { readSecretJson } from "../protocol/secret-file.js";
import { compileScopes, type Scopes } from "./scopes.js";

// The client registry (issue 20): who may call (keys, with ids and expiry), what they may do
// (scopes, SPEC §9) and how much (limits), in one JSON format with a published JSON Schema
// (`schemas/clients.schema.json`). `smcp serve --clients FILE`, a registry kept in a store, and
// the `clients` of a keyring file all come through here.

/** One key of a client, as the registry writes it. */
export interface KeySpec {
  /** The key's label, unique within the client (`smcp clients rotate --retire ID` names it). */
  id: string;
  /** An HMAC secret. */
  secret?: string;
  /** An Ed25519 public key, `ed25519:…`. */
  public?: string;
  /** An Ed25519 public key as a JWK. */
  jwk?: Record<string, unknown>;
  /** RFC 3339; past it the key verifies nothing. */
  not_after?: string;
}

/** A client's limits, under the registry's names (the keyring file's old top-level names map onto these). */
export interface LimitsSpec {
  rate?: number | string;
  burst?: number;
  max_open_jobs?: number;
  max_stored_bytes?: number;
  max_held_polls?: number;
}

/** One client of the registry. */
export interface ClientSpec {
  keys: KeySpec[];
  scopes?: string[];
  limits?: LimitsSpec;
  disabled?: boolean;
}

/** The registry document (`clients.json`, or the value kept in a store). */
export interface RegistryDocument {
  clients: Record<string, ClientSpec>;
}

/** A client's limits as the server's limiter takes them (`ClientLimits`), plus its held long polls. */
export interface CompiledLimits {
  rate?: number;
  burst?: number;
  maxOpenJobs?: number;
  maxStoredBytes?: number;
  maxHeldPolls?: number;
}

/** A client ready for the server: keys as the keyring takes them, compiled scopes, limits. */
export interface CompiledClient {
  readonly id: string;
  /** Its keys, labelled by id (`{ secret, kid }`, the keyring's input). */
  readonly keys: readonly { secret: string; kid: string }[];
  /** Expiry (Unix ms) by key id, for the keys that have one. */
  readonly notAfter: ReadonlyMap<string, number>;
  readonly scopes: Scopes;
  readonly limits: CompiledLimits;
  readonly disabled: boolean;
}

/** An empty registry document. */
export function emptyRegistry(): RegistryDocument {
  return { clients: {} };
}

const SCHEMA_URL = new URL("../../schemas/clients.schema.json", import.meta.url);
let validators: { document: ValidateFunction; client: ValidateFunction } | undefined;

// ajv compiles the schema once per process, on first use: a client that never reads a registry never loads it.
function schema(): { document: ValidateFunction; client: ValidateFunction } {
  if (validators) return validators;
  const { Ajv2020: Ajv } = createRequire(import.meta.url)("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js");
  const ajv = new Ajv({ allErrors: false, strict: true, strictRequired: false, allowUnionTypes: true });
  ajv.addSchema(JSON.parse(readFileSync(SCHEMA_URL, "utf8")) as object);
  const id = "https://smcp.dev/schemas/clients.schema.json";
  validators = {
    document: ajv.getSchema(id) as ValidateFunction,
    client: ajv.getSchema(`${id}#/$defs/client`) as ValidateFunction,
  };
  return validators;
}

/** An ajv error as one line naming what is wrong where: the key, the client, the file. */
function explain(error: ErrorObject | undefined, source: string, clientId?: string): SmcpUsageError {
  const where = clientId === undefined ? source : `${source}: client '${clientId.slice(0, 64)}'`;
  if (!error) return new SmcpUsageError(`${where}: does not match the client registry schema`);
  const path = error.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  // Inside a client: the path starts at the client; inside the document: at /clients/ID/...
  let client = clientId;
  let rest = path;
  if (clientId === undefined && path[0] === "clients" && path.length > 1) {
    client = path[1];
    rest = path.slice(2);
  }
  const at = client === undefined ? source : `${source}: client '${String(client).slice(0, 64)}'`;
  const field = rest.length > 0 ? ` ${rest.join(".")}` : "";
  if (error.keyword === "additionalProperties") {
    const key = String((error.params as { additionalProperty: string }).additionalProperty).slice(0, 64);
    return new SmcpUsageError(`${at}:${field} has an unknown key "${key}"`);
  }
  if (error.keyword === "required") {
    const key = (error.params as { missingProperty: string }).missingProperty;
    return new SmcpUsageError(`${at}:${field} is missing "${key}"`);
  }
  if (error.keyword === "oneOf" && rest[0] === "keys") {
    return new SmcpUsageError(`${at}:${field} must have exactly one of "secret", "public" or "jwk"`);
  }
  if (error.keyword === "pattern" && rest[0] === "scopes") {
    return new SmcpUsageError(`${at}:${field} is not one of tools:<pattern> (e.g. tools:*, tools:weather.*) or jobs:all`);
  }
  // Never the value: it may be a secret.
  return new SmcpUsageError(`${at}:${field} ${error.message ?? "is not valid"}`);
}

/** Checks a registry document against the schema, strictly: an unknown key names the key, the client and the source. */
export function parseRegistry(value: unknown, source: string): RegistryDocument {
  const { document } = schema();
  if (!document(value)) throw explain(document.errors?.[0], source);
  const doc = value as RegistryDocument;
  for (const [id, client] of Object.entries(doc.clients)) checkClient(id, client, source);
  return doc;
}

/** What the schema cannot say: key ids unique within a client, and a not_after that is a real instant. */
function checkClient(id: string, client: ClientSpec, source: string): void {
  const seen = new Set<string>();
  for (const key of client.keys) {
    if (seen.has(key.id)) throw new SmcpUsageError(`${source}: client '${id}': key id "${key.id}" is used twice`);
    seen.add(key.id);
    if (key.not_after !== undefined && !Number.isFinite(Date.parse(key.not_after))) {
      throw new SmcpUsageError(`${source}: client '${id}': key "${key.id}" has a not_after that is not a date`);
    }
  }
}

/** Reads and checks a registry file (mode 0600 or stricter); a missing file is an empty registry when `missingOk`. */
export function readRegistryFile(path: string, options: { missingOk?: boolean } = {}): RegistryDocument {
  if (!existsSync(path)) {
    if (options.missingOk) return emptyRegistry();
    throw new SmcpUsageError(`${path}: no such clients file (\`smcp clients add ID --clients ${path}\` creates it)`);
  }
  return parseRegistry(readSecretJson(path), path);
}

// The keyring file's old per-client names, at the client's top level; the registry has them under `limits`.
const LEGACY_LIMITS = ["rate", "burst", "max_open_jobs", "max_stored_bytes"] as const;

/**
 * A keyring file's client entry in any shape it has had (a key string, a
 * list of them, an Ed25519 JWK, the object form with `keys` and top-level
 * limits) as a registry client, then checked against the same schema.
 */
export function clientFromKeyring(id: string, entry: unknown, source: string): ClientSpec {
  const keyOf = (item: unknown, index: number): unknown => {
    const kid = `k${index + 1}`;
    if (typeof item === "string") return item.startsWith("ed25519:") ? { id: kid, public: item } : { id: kid, secret: item };
    if (isJsonObject(item) && "kty" in item) return { id: kid, jwk: item };
    return item; // a key object of the new form (or something the schema refuses)
  };
  const keysOf = (value: unknown): unknown => (Array.isArray(value) ? value.map(keyOf) : [keyOf(value, 0)]);
  let client: Record<string, unknown>;
  if (isJsonObject(entry) && !("kty" in entry)) {
    client = { ...entry };
    if ("keys" in client) client.keys = keysOf(client.keys);
    const limits: Record<string, unknown> = isJsonObject(client.limits) ? { ...client.limits } : {};
    let legacy = false;
    for (const name of LEGACY_LIMITS) {
      if (name in client) {
        limits[name] = client[name];
        delete client[name];
        legacy = true;
      }
    }
    if (legacy) client.limits = limits;
  } else {
    client = { keys: keysOf(entry) };
  }
  const { client: validate } = schema();
  if (!validate(client)) throw explain(validate.errors?.[0], source, id);
  checkClient(id, client as unknown as ClientSpec, source);
  return client as unknown as ClientSpec;
}

/** A rate as the registry writes it (`100/s`, `6000/m`, `off`, or a number per second), in requests per second. */
export function rateOf(value: number | string, who: string): number {
  if (typeof value === "number") return value;
  if (value === "off") return 0;
  const match = /^(\d+(?:\.\d+)?)(?:\/(s|m|h))?$/.exec(value.trim());
  if (!match) throw new SmcpUsageError(`${who}: rate must look like 100/s, 6000/m or off`);
  return Number(match[1]) / { s: 1, m: 60, h: 3600 }[(match[2] ?? "s") as "s" | "m" | "h"];
}

/** Compiles one client: scopes compiled once, keys labelled, expiries parsed, limits renamed. */
export function compileClient(id: string, spec: ClientSpec, source: string): CompiledClient {
  const who = `${source}: client '${id}'`;
  const keys = spec.keys.map((key) => ({
    kid: key.id,
    secret: key.secret ?? key.public ?? jwkToKeyString(key.jwk, `${who} key "${key.id}"`),
  }));
  const notAfter = new Map<string, number>();
  for (const key of spec.keys) if (key.not_after !== undefined) notAfter.set(key.id, Date.parse(key.not_after));
  const l = spec.limits ?? {};
  const limits: CompiledLimits = {};
  if (l.rate !== undefined) limits.rate = rateOf(l.rate, who);
  if (l.burst !== undefined) limits.burst = l.burst;
  if (l.max_open_jobs !== undefined) limits.maxOpenJobs = l.max_open_jobs;
  if (l.max_stored_bytes !== undefined) limits.maxStoredBytes = l.max_stored_bytes;
  if (l.max_held_polls !== undefined) limits.maxHeldPolls = l.max_held_polls;
  return Object.freeze({
    id,
    keys: Object.freeze(keys),
    notAfter,
    scopes: compileScopes(spec.scopes, who),
    limits: Object.freeze(limits),
    disabled: spec.disabled === true,
  });
}

/** Compiles every client of a document. */
export function compileRegistry(doc: RegistryDocument, source: string): Map<string, CompiledClient> {
  const out = new Map<string, CompiledClient>();
  for (const [id, spec] of Object.entries(doc.clients)) out.set(id, compileClient(id, spec, source));
  return out;
}

/**
 * Joins clients from several sources (the keyring file, `--clients FILE`, a
 * store): an id defined in two is an error naming both, never a silent winner.
 */
export function mergeClients(
  parts: readonly { source: string; clients: ReadonlyMap<string, CompiledClient> }[],
): Map<string, CompiledClient> {
  const out = new Map<string, CompiledClient>();
  const from = new Map<string, string>();
  for (const { source, clients } of parts) {
    for (const [id, client] of clients) {
      const other = from.get(id);
      if (other !== undefined) {
        throw new SmcpUsageError(`client '${id}' is defined both in ${other} and in ${source}; keep it in one place`);
      }
      from.set(id, source);
      out.set(id, client);
    }
  }
  return out;
}

/** The algorithm a client spec's keys are of, for `smcp clients list` (no secret read out). */
export function algOf(spec: ClientSpec): "hmac" | "ed25519" {
  const key = spec.keys[0];
  return key && (key.public !== undefined || key.jwk !== undefined) ? "ed25519" : "hmac";
}

/** The JSON value of a client spec as it is kept, for a document written back (stable key order). */
export function toJson(doc: RegistryDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** A registry document from parsed JSON whose shape is not checked yet (a store's value). */
export function isDocument(value: unknown): value is RegistryDocument {
  return isJsonObject(value as JsonValue) && isJsonObject((value as { clients: JsonValue }).clients);
}
