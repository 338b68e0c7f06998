import { existsSync, readFileSync } from "node:fs";
import {
  type ClientSpec,
  type CompiledClient,
  clientFromKeyring,
  compileClient,
  compileRegistry,
  mergeClients,
  readRegistryFile,
} from "../auth/registry.js";
import { type RegistryStorage, readStoredRegistry } from "../auth/store.js";
import { openRegistryStorage } from "../backends/registry.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";
import { parseJson } from "../protocol/parse.js";
import type { ClientLimits } from "../server/limits.js";

// Where `smcp serve` gets its clients (issue 20): the keyring file or --client flags (as before),
// `--clients FILE`, and the registry a store keeps (`--clients-from-store`). Each load builds the
// whole set; an id in two places is an error naming both.

/** What serve resolved about its clients. */
export interface ClientSources {
  /** The keyring file, when its `clients` are the ones served (not --client / SMCP_CLIENTS). */
  keyringFile: string | undefined;
  /** Keys by client id from --client / SMCP_CLIENTS (or the keyring file). */
  keys: ReadonlyMap<string, readonly string[]>;
  /** --scope (and the keyring file's scopes). */
  scopes: ReadonlyMap<string, readonly string[]>;
  /** Per-client limits from the keyring file's old top-level names. */
  limits: ReadonlyMap<string, ClientLimits>;
  /** `--clients FILE`. */
  clientsFile: string | undefined;
  /** The store URL whose registry is served (`--clients-from-store`). */
  store: string | undefined;
}

/** An open registry: the clients now, how to load them again, and the store's version counter. */
export interface OpenRegistry {
  clients: Map<string, CompiledClient>;
  version: number;
  load(): Promise<{ clients: Map<string, CompiledClient>; version?: number }>;
  storage: RegistryStorage | undefined;
  close(): Promise<void>;
}

/** The keyring file's clients in every shape it has had, compiled (scopes from --scope win). */
function keyringFileClients(path: string, scopes: ReadonlyMap<string, readonly string[]>): Map<string, CompiledClient> {
  const out = new Map<string, CompiledClient>();
  if (!existsSync(path)) return out;
  const value = parseJson(readFileSync(path));
  const clients = isJsonObject(value) ? value.clients : undefined;
  if (!isJsonObject(clients)) return out;
  for (const [id, entry] of Object.entries(clients)) {
    const spec = clientFromKeyring(id, entry, path);
    const given = scopes.get(id);
    out.set(id, compileClient(id, given ? { ...spec, scopes: [...given] } : spec, path));
  }
  return out;
}

/** Clients given by --client / SMCP_CLIENTS, with their --scope and the keyring file's limits. */
function flagClients(sources: ClientSources): Map<string, CompiledClient> {
  const out = new Map<string, CompiledClient>();
  for (const [id, keys] of sources.keys) {
    const spec: ClientSpec = {
      keys: keys.map((key, i) =>
        key.startsWith("ed25519:") ? { id: `k${i + 1}`, public: key } : { id: `k${i + 1}`, secret: key },
      ),
    };
    const scopes = sources.scopes.get(id);
    if (scopes) spec.scopes = [...scopes];
    const limits = sources.limits.get(id);
    if (limits) {
      spec.limits = {};
      if (limits.rate !== undefined) spec.limits.rate = limits.rate;
      if (limits.burst !== undefined) spec.limits.burst = limits.burst;
      if (limits.maxOpenJobs !== undefined) spec.limits.max_open_jobs = limits.maxOpenJobs;
      if (limits.maxStoredBytes !== undefined) spec.limits.max_stored_bytes = limits.maxStoredBytes;
    }
    out.set(id, compileClient(id, spec, "--client"));
  }
  return out;
}

/**
 * Opens serve's client sources and loads them once (a bad one here is a
 * start-up error); `load` loads them all again for a reload.
 */
export async function openClientSources(sources: ClientSources): Promise<OpenRegistry> {
  for (const id of sources.scopes.keys()) {
    if (!sources.keys.has(id)) throw new SmcpUsageError(`--scope is given for client '${id}', which has no keys here`);
  }
  const storage = sources.store === undefined ? undefined : await openRegistryStorage(sources.store);
  const load = async () => {
    const parts: { source: string; clients: ReadonlyMap<string, CompiledClient> }[] = [
      sources.keyringFile === undefined
        ? { source: "--client", clients: flagClients(sources) }
        : { source: sources.keyringFile, clients: keyringFileClients(sources.keyringFile, sources.scopes) },
    ];
    if (sources.clientsFile !== undefined) {
      parts.push({
        source: sources.clientsFile,
        clients: compileRegistry(readRegistryFile(sources.clientsFile), sources.clientsFile),
      });
    }
    let version: number | undefined;
    if (storage) {
      const source = "the store's client registry";
      const stored = await readStoredRegistry(storage, source);
      version = stored.version;
      parts.push({ source, clients: compileRegistry(stored.document, source) });
    }
    return { clients: mergeClients(parts), ...(version === undefined ? {} : { version }) };
  };
  try {
    const first = await load();
    return {
      clients: first.clients,
      version: first.version ?? 1,
      load,
      storage,
      close: async () => storage?.close(),
    };
  } catch (error) {
    await storage?.close();
    throw error;
  }
}
