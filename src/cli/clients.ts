import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  algOf,
  type ClientSpec,
  compileRegistry,
  type KeySpec,
  parseRegistry,
  type RegistryDocument,
  readRegistryFile,
  toJson,
} from "../auth/registry.js";
import { readStoredRegistry, updateStoredRegistry } from "../auth/store.js";
import { openRegistryStorage } from "../backends/registry.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { generateEd25519, toKeys } from "../protocol/keys.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { newSecret, parseInteger } from "./config.js";
import type { CliIO } from "./io.js";

/** `smcp clients --help`. */
export const CLIENTS_HELP = `usage: smcp clients COMMAND [ARGS] (--clients FILE | --store URL) [--json]

Manages the client registry (schemas/clients.schema.json): who may call a
server (keys), what each client may do (scopes, SPEC §9) and how much
(limits). A server started with --clients FILE reloads the file when it
changes; one started with --clients-from-store sees a change to the store's
registry within 1 s, on every replica.

commands:
  add ID [--alg hmac|ed25519] [--public-key ed25519:…] [--scope S]… [--rate N/s]
         [--burst N] [--max-open-jobs N] [--max-stored-bytes N] [--max-held-polls N]
                        a new client; an HMAC secret (or an Ed25519 secret made here) is
                        printed once and kept nowhere else you can read it back
  list                  every client: keys by id (never a secret), scopes, limits, disabled
  show ID               one client, the same way
  scopes ID S…          replaces the client's scopes (tools:<pattern>, jobs:all)
  rotate ID [--public-key ed25519:…]
                        adds a key and prints its id (and a new secret, once)
  rotate ID --retire KEY_ID
                        removes a key (the last one cannot go: remove the client)
  disable ID            refused as unknown from the next request on; its open jobs are cancelled
  enable ID             allowed again
  remove ID             gone at once; its open jobs are cancelled

where:
  --clients FILE        a clients file (created if missing, mode 0600)   SMCP_CLIENTS_FILE
  --store URL           the registry a store keeps: sqlite:PATH or redis://HOST:PORT[/DB][?prefix=P]
  --json                one line of JSON per command (shapes in docs/tenants.md)`;

/** Where the registry is edited: a file, or a store's registry (compare-and-set). */
interface Target {
  name: string;
  read(): Promise<{ document: RegistryDocument; version?: number }>;
  update(change: (doc: RegistryDocument) => RegistryDocument): Promise<{ document: RegistryDocument; version?: number }>;
  close(): Promise<void>;
}

function fileTarget(path: string): Target {
  return {
    name: path,
    read: async () => ({ document: readRegistryFile(path, { missingOk: true }) }),
    update: async (change) => {
      const next = parseRegistry(JSON.parse(JSON.stringify(change(readRegistryFile(path, { missingOk: true })))), path);
      compileRegistry(next, path); // keys that parse, scopes that compile: checked before anything is written
      // Written whole and renamed into place: a server watching the file never reads half of it.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
      writeFileSync(temp, toJson(next), { mode: 0o600, flag: "wx" });
      chmodSync(temp, 0o600);
      renameSync(temp, path);
      return { document: next };
    },
    close: async () => undefined,
  };
}

async function storeTarget(url: string): Promise<Target> {
  const storage = await openRegistryStorage(url);
  const source = `the client registry in ${redactUrl(url)}`;
  return {
    name: source,
    read: () => readStoredRegistry(storage, source),
    update: (change) =>
      updateStoredRegistry(storage, source, (doc) => {
        const next = change(doc);
        compileRegistry(parseRegistry(JSON.parse(JSON.stringify(next)), source), source);
        return next;
      }),
    close: () => storage.close(),
  };
}

/** A client as `list`/`show` print it: never a secret. */
function describeClient(id: string, spec: ClientSpec): Record<string, unknown> {
  return {
    id,
    alg: algOf(spec),
    keys: spec.keys.map((k) => ({ id: k.id, ...(k.not_after === undefined ? {} : { not_after: k.not_after }) })),
    scopes: spec.scopes ?? ["tools:*"],
    limits: spec.limits ?? {},
    disabled: spec.disabled === true,
  };
}

function clientLine(c: Record<string, unknown>): string {
  const keys = (c.keys as { id: string; not_after?: string }[])
    .map((k) => (k.not_after ? `${k.id} (until ${k.not_after})` : k.id))
    .join(", ");
  const limits = Object.entries(c.limits as object)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return `${c.id}${c.disabled ? " [disabled]" : ""}  ${c.alg}  keys: ${keys}  scopes: ${(c.scopes as string[]).join(" ")}${limits ? `  limits: ${limits}` : ""}`;
}

/** A new key id for a client: k1, k2, … the first not taken. */
function nextKeyId(spec: ClientSpec | undefined): string {
  const taken = new Set(spec?.keys.map((k) => k.id) ?? []);
  for (let n = 1; ; n++) if (!taken.has(`k${n}`)) return `k${n}`;
}

/** A new key of the client's algorithm: an HMAC secret, a given public key, or a pair made here. */
function newKey(id: string, alg: "hmac" | "ed25519", publicKey: string | undefined): { key: KeySpec; secret?: string } {
  if (alg === "hmac") {
    if (publicKey !== undefined) throw new SmcpUsageError("--public-key is for Ed25519 clients (--alg ed25519)");
    const secret = newSecret();
    return { key: { id, secret }, secret };
  }
  if (publicKey !== undefined) {
    // Refuses a private key, a malformed or weak public key, naming the flag (never the value).
    const [key] = toKeys(publicKey, "--public-key");
    if (key?.alg !== "ed25519" || key.privateKey) {
      throw new SmcpUsageError("--public-key must be the client's public key ed25519:… (never its ed25519-secret:)");
    }
    return { key: { id, public: key.public } };
  }
  const pair = generateEd25519();
  return { key: { id, public: pair.public }, secret: pair.secret };
}

function need(doc: RegistryDocument, id: string, where: string): ClientSpec {
  const spec = Object.hasOwn(doc.clients, id) ? doc.clients[id] : undefined;
  if (!spec) throw new SmcpUsageError(`no client '${id}' in ${where} (\`smcp clients list\` lists them)`);
  return spec;
}

/** `smcp clients …`: edits the registry in a file or a store. */
export async function clientsCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "clients",
      help: CLIENTS_HELP,
      positionals: true,
      options: {
        clients: { type: "string" },
        store: { type: "string" },
        json: { type: "boolean" },
        alg: { type: "string" },
        "public-key": { type: "string" },
        scope: { type: "string", multiple: true },
        rate: { type: "string" },
        burst: { type: "string" },
        "max-open-jobs": { type: "string" },
        "max-stored-bytes": { type: "string" },
        "max-held-polls": { type: "string" },
        retire: { type: "string" },
      },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const [command, id, ...rest] = flags.positionals;
  const json = flags.boolean("json");
  const file = flags.string("clients") ?? io.env.SMCP_CLIENTS_FILE;
  const store = flags.string("store");
  if (command === undefined) throw new SmcpUsageError("which command? add, list, show, scopes, rotate, disable, enable, remove");
  if ((file === undefined) === (store === undefined)) {
    throw new SmcpUsageError("give the registry: --clients FILE or --store URL (one of them)");
  }
  const takesId = command !== "list";
  if (takesId && (id === undefined || id === "")) throw new SmcpUsageError(`smcp clients ${command} needs a client ID`);
  if (command !== "scopes" && rest.length > 0)
    throw new SmcpUsageError(`smcp clients ${command} takes one ID, not more arguments`);
  const target = store !== undefined ? await storeTarget(store) : fileTarget(resolve(file as string));
  const print = (value: Record<string, unknown>, text: string[]) => {
    if (json) io.out(JSON.stringify(value));
    else for (const line of text) io.out(line);
  };
  const clientId = id as string;
  try {
    switch (command) {
      case "list": {
        const { document, version } = await target.read();
        const clients = Object.entries(document.clients).map(([cid, spec]) => describeClient(cid, spec));
        print(
          { clients, ...(version === undefined ? {} : { version }) },
          clients.length === 0 ? [`no clients in ${target.name}`] : clients.map(clientLine),
        );
        return 0;
      }
      case "show": {
        const { document } = await target.read();
        const c = describeClient(clientId, need(document, clientId, target.name));
        print(c, [clientLine(c)]);
        return 0;
      }
      case "add": {
        const alg = flags.string("alg") ?? (flags.string("public-key") ? "ed25519" : "hmac");
        if (alg !== "hmac" && alg !== "ed25519") throw new SmcpUsageError("--alg must be hmac or ed25519");
        const made = newKey("k1", alg, flags.string("public-key"));
        const spec: ClientSpec = { keys: [made.key] };
        const scopes = flags.list("scope");
        if (scopes.length > 0) spec.scopes = scopes;
        const limits = limitFlags(flags);
        if (limits) spec.limits = limits;
        const { version } = await target.update((doc) => {
          if (Object.hasOwn(doc.clients, clientId)) {
            throw new SmcpUsageError(`client '${clientId}' already exists in ${target.name} (rotate adds a key)`);
          }
          return { ...doc, clients: { ...doc.clients, [clientId]: spec } };
        });
        const out: Record<string, unknown> = { id: clientId, alg, scopes: spec.scopes ?? ["tools:*"], key_id: "k1" };
        if (made.key.public !== undefined) out.public = made.key.public;
        if (made.secret !== undefined) out.secret = made.secret;
        if (version !== undefined) out.version = version;
        print(out, [
          `added client '${clientId}' (${alg}, key k1, scopes ${(out.scopes as string[]).join(" ")}) to ${target.name}`,
          ...(made.key.public !== undefined ? [`public: ${made.key.public}`] : []),
          ...(made.secret !== undefined ? [`secret: ${made.secret}`, "  (shown once: give it to the client now)"] : []),
        ]);
        return 0;
      }
      case "scopes": {
        if (rest.length === 0) throw new SmcpUsageError("smcp clients scopes ID S…: give at least one scope (tools:*, jobs:all)");
        await target.update((doc) => {
          const spec = need(doc, clientId, target.name);
          return { ...doc, clients: { ...doc.clients, [clientId]: { ...spec, scopes: rest } } };
        });
        print({ id: clientId, scopes: rest }, [`client '${clientId}' now has scopes ${rest.join(" ")}`]);
        return 0;
      }
      case "rotate": {
        const retire = flags.string("retire");
        if (retire !== undefined) {
          let keys: string[] = [];
          await target.update((doc) => {
            const spec = need(doc, clientId, target.name);
            const left = spec.keys.filter((k) => k.id !== retire);
            if (left.length === spec.keys.length) throw new SmcpUsageError(`client '${clientId}' has no key '${retire}'`);
            if (left.length === 0) {
              throw new SmcpUsageError(
                `'${retire}' is the last key of client '${clientId}'; add one first, or remove the client`,
              );
            }
            keys = left.map((k) => k.id);
            return { ...doc, clients: { ...doc.clients, [clientId]: { ...spec, keys: left } } };
          });
          print({ id: clientId, retired: retire, keys }, [
            `retired key ${retire} of client '${clientId}'; keys now: ${keys.join(", ")}`,
          ]);
          return 0;
        }
        let made: ReturnType<typeof newKey> | undefined;
        await target.update((doc) => {
          const spec = need(doc, clientId, target.name);
          made = newKey(nextKeyId(spec), algOf(spec), flags.string("public-key"));
          return { ...doc, clients: { ...doc.clients, [clientId]: { ...spec, keys: [...spec.keys, made.key] } } };
        });
        const key = made as NonNullable<typeof made>;
        const out: Record<string, unknown> = { id: clientId, key_id: key.key.id };
        if (key.key.public !== undefined) out.public = key.key.public;
        if (key.secret !== undefined) out.secret = key.secret;
        print(out, [
          `added key ${key.key.id} to client '${clientId}' (the old keys still verify until retired: --retire KEY_ID)`,
          ...(key.key.public !== undefined ? [`public: ${key.key.public}`] : []),
          ...(key.secret !== undefined ? [`secret: ${key.secret}`, "  (shown once: give it to the client now)"] : []),
        ]);
        return 0;
      }
      case "disable":
      case "enable": {
        const disabled = command === "disable";
        await target.update((doc) => {
          const { disabled: _was, ...spec } = need(doc, clientId, target.name);
          return { ...doc, clients: { ...doc.clients, [clientId]: disabled ? { ...spec, disabled: true } : spec } };
        });
        print({ id: clientId, disabled }, [`client '${clientId}' ${disabled ? "disabled" : "enabled"}`]);
        return 0;
      }
      case "remove": {
        await target.update((doc) => {
          need(doc, clientId, target.name);
          const clients = { ...doc.clients };
          delete clients[clientId];
          return { ...doc, clients };
        });
        print({ id: clientId, removed: true }, [`removed client '${clientId}'`]);
        return 0;
      }
      default:
        throw new SmcpUsageError(
          `unknown clients command '${command.slice(0, 40)}'; one of add, list, show, scopes, rotate, disable, enable, remove`,
        );
    }
  } finally {
    await target.close();
  }
}

/** `--rate`, `--burst`, `--max-…` of `add`, under the registry's names. */
function limitFlags(flags: NonNullable<ReturnType<typeof parseCommand>>): ClientSpec["limits"] | undefined {
  const limits: NonNullable<ClientSpec["limits"]> = {};
  const rate = flags.string("rate");
  if (rate !== undefined) limits.rate = rate;
  const whole = (flag: string, min: number) => {
    const value = flags.string(flag);
    return value === undefined ? undefined : parseInteger(value, `--${flag}`, min, Number.MAX_SAFE_INTEGER);
  };
  const burst = whole("burst", 0);
  if (burst !== undefined) limits.burst = burst;
  const open = whole("max-open-jobs", 0);
  if (open !== undefined) limits.max_open_jobs = open;
  const bytes = whole("max-stored-bytes", 0);
  if (bytes !== undefined) limits.max_stored_bytes = bytes;
  const polls = whole("max-held-polls", 1);
  if (polls !== undefined) limits.max_held_polls = polls;
  return Object.keys(limits).length > 0 ? limits : undefined;
}
