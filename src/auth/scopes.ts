import { SmcpUsageError } from "../protocol/errors.js";

// SPEC §9: what a client may do, beside who it is. `tools:<pattern>` allows calling (or starting)
// the tools whose names match (`*`: any run of characters); `jobs:all` allows every client's jobs.

/** The scopes a record without any has: every tool (a seed client keeps working). */
export const DEFAULT_SCOPES: readonly string[] = Object.freeze(["tools:*"]);

const SCOPE = /^(?:tools:[A-Za-z0-9_.:*/-]{1,128}|jobs:all)$/;

/** A client's scopes, compiled once per registry: a lookup per request. */
export interface Scopes {
  /** The scopes as configured. */
  readonly list: readonly string[];
  /** True when one of the `tools:` patterns matches the name. */
  mayCall(tool: string): boolean;
  /** `jobs:all`: may list, poll and cancel every client's jobs. */
  readonly jobsAll: boolean;
}

/** Checks and compiles a client's scopes; an unknown scope is a usage error naming it and the client. */
export function compileScopes(scopes: readonly string[] | undefined, who: string): Scopes {
  const list = scopes ?? DEFAULT_SCOPES;
  for (const scope of list) {
    if (typeof scope !== "string" || !SCOPE.test(scope)) {
      throw new SmcpUsageError(
        `${who}: scope ${JSON.stringify(String(scope).slice(0, 140))} is not one of tools:<pattern> (e.g. tools:*, tools:weather.*) or jobs:all`,
      );
    }
  }
  const patterns = list.filter((s) => s.startsWith("tools:")).map((s) => s.slice("tools:".length));
  const exact = new Set(patterns.filter((p) => !p.includes("*")));
  const everything = patterns.includes("*");
  const globs = patterns
    .filter((p) => p.includes("*") && p !== "*")
    .map((p) => new RegExp(`^${p.split("*").map(escapeRegExp).join(".*")}$`, "s"));
  // Answers are kept: a server has few tools, and a name outside them is refused before it gets here.
  const seen = new Map<string, boolean>();
  return Object.freeze({
    list: Object.freeze([...list]),
    jobsAll: list.includes("jobs:all"),
    mayCall(tool: string): boolean {
      if (everything || exact.has(tool)) return true;
      if (globs.length === 0) return false;
      let allowed = seen.get(tool);
      if (allowed === undefined) {
        allowed = globs.some((glob) => glob.test(tool));
        if (seen.size < 4096) seen.set(tool, allowed);
      }
      return allowed;
    },
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
