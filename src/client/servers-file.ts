import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isJsonObject } from "../protocol/messages.js";
import { parseJson } from "../protocol/parse.js";

// `.smcp/servers.json`: where each server started in this folder listens, by server id. `smcp serve`
// writes its own entry and removes it when it stops; it never rewrites a file it did not create
// (the keyring file is the user's). Callers read it, so two servers in one folder (two ids) can't
// capture each other's callers.

/** The servers file beside a keyring file. */
export function serversPath(keyringPath: string): string {
  return join(dirname(keyringPath), "servers.json");
}

interface ServerEntry {
  url: string;
  pid: number;
}

function readAll(path: string): Record<string, ServerEntry> {
  if (!existsSync(path)) return {};
  try {
    const value = parseJson(readFileSync(path));
    const servers = isJsonObject(value) && isJsonObject(value.servers) ? value.servers : {};
    const out: Record<string, ServerEntry> = {};
    for (const [id, entry] of Object.entries(servers)) {
      if (isJsonObject(entry) && typeof entry.url === "string" && typeof entry.pid === "number") {
        out[id] = { url: entry.url, pid: entry.pid };
      }
    }
    return out;
  } catch {
    return {}; // a file we can't read names no server: callers fall back to their other sources
  }
}

function writeAll(path: string, servers: Record<string, ServerEntry>): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ servers }, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}

/** Where the server with this id listens, if one started in this folder says so (and its process lives). */
export function serverUrl(path: string, serverId: string): string | undefined {
  const entry = readAll(path)[serverId];
  if (!entry) return undefined;
  try {
    process.kill(entry.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return undefined; // it died without saying so
  }
  return entry.url;
}

/**
 * Records where this process's server listens, under its id. A live server
 * already recorded under the same id keeps its entry (returned), so a second
 * server started in the folder never takes the first one's callers.
 */
export function recordServer(path: string, serverId: string, url: string): string | undefined {
  const servers = readAll(path);
  const taken = serverUrl(path, serverId);
  if (taken !== undefined && servers[serverId]?.pid !== process.pid) return taken;
  writeAll(path, { ...servers, [serverId]: { url, pid: process.pid } });
  return undefined;
}

/** Removes this process's entry (on a clean stop), leaving every other server's. */
export function forgetServer(path: string, serverId: string): void {
  const servers = readAll(path);
  if (servers[serverId]?.pid !== process.pid) return;
  delete servers[serverId];
  writeAll(path, servers);
}
