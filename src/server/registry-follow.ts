import { type FSWatcher, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { CompiledClient } from "../auth/registry.js";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import type { SmcpServer } from "./core.js";

// Live changes to the client registry (issue 20): a file that changes (fs.watch with a debounce,
// a stat poll behind it for file systems that do not report changes), SIGHUP, or a store's version
// counter read every 250 ms. Each reload builds the whole client set and swaps it in at once; a bad
// one keeps the registry in force, is logged and counted, and /healthz says the registry is stale.

/** Why a reload failed, in a word /healthz can show a stranger (the details go to the log). */
export type StaleReason = "missing" | "file_mode" | "invalid_json" | "invalid" | "duplicate_client" | "refused_key" | "store";

/** What the server reports of its registry (in /healthz, under `registry`). */
export interface RegistryStatus {
  /** The version in force: the store's counter, or a count of loads for a file. */
  version: number;
  /** Present while the last reload failed: the registry in force is older than its source. */
  stale?: { reason: StaleReason; since_ms: number };
}

/** A reload's outcome, for logs and metrics. */
export type RegistryEvent =
  | { ok: true; version: number; clients: number; trigger: string; cancelledJobs: number }
  | { ok: false; reason: StaleReason; trigger: string; error: unknown };

/** Options for {@link followRegistry}. */
export interface FollowOptions {
  server: SmcpServer;
  /** Builds every client (keyring file, clients file, store) and the version; throws on a bad registry. */
  load: () => Promise<{ clients: ReadonlyMap<string, CompiledClient>; version?: number }>;
  /** A file to follow: watched (debounced) and polled (`pollMs`). */
  file?: string;
  /** How often a followed file is checked by stat as well, ms. Default 1,000. */
  pollMs?: number;
  /** A store's version counter, read every `versionEveryMs`; a change triggers a reload. */
  version?: () => Promise<number>;
  /** How often the store's version is read, ms. Default 250. */
  versionEveryMs?: number;
  /** Debounce of file events, ms. Default 100. */
  debounceMs?: number;
  /** Reload on SIGHUP. Default false (a library does not take process signals unasked). */
  sighup?: boolean;
  /** Sees each reload. */
  onReload?: (event: RegistryEvent) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/** A running follower: reload on demand, its status, and stop. */
export interface RegistryFollower {
  /** Reloads now (serialised: a reload asked for during one runs once more after it). */
  reload(trigger?: string): Promise<boolean>;
  readonly status: RegistryStatus;
  close(): void;
}

/** Classifies a load error into the word /healthz shows. */
export function staleReason(error: unknown, fromStore: boolean): StaleReason {
  if (!(error instanceof SmcpUsageError)) return fromStore ? "store" : "missing";
  const text = error.message;
  if (text.includes("no such clients file")) return "missing";
  if (text.includes("readable by other users")) return "file_mode";
  if (text.includes("not valid JSON")) return "invalid_json";
  if (text.includes("is defined both")) return "duplicate_client";
  if (/private key|server's (own|secret)|no (HMAC|Ed25519) key|mixes HMAC/.test(text)) return "refused_key";
  return "invalid";
}

/**
 * Follows a registry: loads it on each trigger and swaps it into the
 * server. The first load is the caller's (at start, a bad registry is a
 * start-up error); this follows the changes after it.
 */
export function followRegistry(options: FollowOptions, initialVersion: number): RegistryFollower {
  const now = options.now ?? Date.now;
  const status: RegistryStatus = { version: initialVersion };
  options.server.healthFacts = { registry: status as unknown as JsonObject };
  let running: Promise<boolean> | undefined;
  let again: string | undefined;
  let closed = false;
  let seenVersion = initialVersion;

  const once = async (trigger: string): Promise<boolean> => {
    try {
      const { clients, version } = await options.load();
      const next = version ?? status.version + 1;
      const cancelled = options.server.setClients(clients, next);
      status.version = next;
      seenVersion = next;
      delete status.stale;
      options.onReload?.({ ok: true, version: next, clients: clients.size, trigger, cancelledJobs: await cancelled });
      return true;
    } catch (error) {
      const reason = staleReason(error, options.version !== undefined);
      status.stale ??= { reason, since_ms: now() };
      status.stale.reason = reason;
      options.onReload?.({ ok: false, reason, trigger, error });
      return false;
    }
  };
  const reload = (trigger = "manual"): Promise<boolean> => {
    if (closed) return Promise.resolve(false);
    if (running) {
      again = trigger;
      return running;
    }
    running = (async () => {
      let ok = await once(trigger);
      while (again !== undefined && !closed) {
        const next = again;
        again = undefined;
        ok = await once(next);
      }
      running = undefined;
      return ok;
    })();
    return running;
  };

  const timers: NodeJS.Timeout[] = [];
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  if (options.file) {
    const file = options.file;
    const name = basename(file);
    let last = fingerprint(file);
    const fire = () => {
      // One change seen by both the watch and the poll is one reload.
      last = fingerprint(file);
      clearTimeout(debounce);
      debounce = setTimeout(() => void reload("file"), options.debounceMs ?? 100);
      debounce.unref();
    };
    // The folder, not the file: editors and `smcp clients` replace the file (a new inode) by rename.
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed.toString() === name) fire();
      });
      watcher.on("error", () => undefined); // the poll below still sees changes
    } catch {
      watcher = undefined;
    }
    const poll = setInterval(() => {
      if (fingerprint(file) !== last) fire();
    }, options.pollMs ?? 1000);
    poll.unref();
    timers.push(poll);
  }
  if (options.version) {
    const read = options.version;
    let checking = false;
    const tick = setInterval(() => {
      if (checking || closed) return;
      checking = true;
      read()
        .then((version) => {
          if (version !== seenVersion) return reload("store").then(() => undefined);
          // A store that answers again after failing: the registry in force is current once more.
          if (status.stale?.reason === "store") return reload("store").then(() => undefined);
          return undefined;
        })
        .catch((error: unknown) => {
          if (status.stale?.reason !== "store") {
            status.stale = { reason: "store", since_ms: now() };
            options.onReload?.({ ok: false, reason: "store", trigger: "store", error });
          }
        })
        .finally(() => {
          checking = false;
        });
    }, options.versionEveryMs ?? 250);
    tick.unref();
    timers.push(tick);
  }
  const onHup = () => void reload("SIGHUP");
  if (options.sighup) process.on("SIGHUP", onHup);

  return {
    reload,
    get status() {
      return status;
    },
    close() {
      closed = true;
      for (const timer of timers) clearInterval(timer);
      clearTimeout(debounce);
      watcher?.close();
      if (options.sighup) process.off("SIGHUP", onHup);
    },
  };
}

/** What changes when a file is replaced or edited: its inode, size and mtime (undefined when absent). */
function fingerprint(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}
