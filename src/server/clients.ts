import type { CompiledClient } from "../auth/registry.js";
import { compileScopes, type Scopes } from "../auth/scopes.js";
import type { Keyring } from "../protocol/keyring.js";
import type { Key } from "../protocol/keys.js";
import type { ClientLimiter, ClientLimits } from "./limits.js";

// What the server knows of its clients at one moment: built whole from a registry, then swapped in
// by one assignment. A request reads it once, at its start, and finishes under it (issue 20).

/** Every tool: a client without scopes (SPEC §9's default, `tools:*`). */
export const ALL_TOOLS: Scopes = compileScopes(undefined, "default");

/** The server's view of its clients for one registry version. */
export interface ClientsSnapshot {
  /** The registry version it was built from (0: the clients given at start). */
  readonly version: number;
  /** The server's keys and the enabled clients' keys. */
  readonly keyring: Keyring;
  /** Compiled scopes by client id; a client not in it has every tool. */
  readonly scopes: ReadonlyMap<string, Scopes>;
  /** Rates and quotas, per-client overrides of this version. */
  readonly limiter: ClientLimiter;
  /** Expiry (Unix ms) by key id, for the clients that have expiring keys. */
  readonly notAfter: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Long polls a client may hold, for clients whose registry record says. */
  readonly heldPolls: ReadonlyMap<string, number>;
}

/**
 * Builds a snapshot from registry clients over the server's own keys and
 * default limits. A disabled client is left out (it is refused as unknown);
 * a client the keyring refuses (a shared secret, no server key of its
 * algorithm) throws, so a bad registry never replaces a good one.
 */
export function buildSnapshot(
  base: { keyring: Keyring; limiter: ClientLimiter },
  clients: ReadonlyMap<string, CompiledClient>,
  version: number,
): ClientsSnapshot {
  const keys = new Map<string, { secret: string; kid: string }[]>();
  const scopes = new Map<string, Scopes>();
  const limits = new Map<string, ClientLimits>();
  const notAfter = new Map<string, ReadonlyMap<string, number>>();
  const heldPolls = new Map<string, number>();
  for (const [id, client] of clients) {
    if (client.disabled) continue;
    keys.set(id, [...client.keys]);
    scopes.set(id, client.scopes);
    const { maxHeldPolls, ...rest } = client.limits;
    if (Object.keys(rest).length > 0) limits.set(id, rest);
    if (maxHeldPolls !== undefined) heldPolls.set(id, maxHeldPolls);
    if (client.notAfter.size > 0) notAfter.set(id, client.notAfter);
  }
  return Object.freeze({
    version,
    keyring: base.keyring.withClients(keys),
    scopes,
    limiter: base.limiter.withClients(limits),
    notAfter,
    heldPolls,
  });
}

/** The keys of a client still live at `now` (a key past its `not_after` verifies nothing). */
export function liveKeys(keys: readonly Key[], expiring: ReadonlyMap<string, number> | undefined, now: number): readonly Key[] {
  if (!expiring) return keys;
  return keys.filter((key) => {
    const end = expiring.get(key.kid);
    return end === undefined || now < end;
  });
}
