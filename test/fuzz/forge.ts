import { canonicalize, joinCanonicalObject } from "../../src/protocol/canonical.js";
import type { Key } from "../../src/protocol/keys.js";
import { signCanonical } from "../../src/protocol/sign.js";

/**
 * Signs whatever it is given, as a peer that does not follow SPEC §2 would:
 * unlike `signMessage`, it signs a lone surrogate too, so the fuzz suites can
 * check that a receiver refuses such a message even when its signature holds.
 */
export function forgeSigned<T extends Record<string, unknown>>(fields: T, key: Key): T & { signature: string } {
  const entries: [string, string][] = [];
  for (const name of Object.keys(fields)) {
    const value = fields[name];
    if (name === "signature" || value === undefined) continue;
    entries.push([name, canonicalize(value)]);
  }
  return { ...fields, signature: signCanonical(key, joinCanonicalObject(entries)) };
}
