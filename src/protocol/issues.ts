import type { z } from "zod";

/** The most validation issues an error answer lists (SPEC §5); the rest are only counted. */
export const MAX_ISSUES = 20;

/** One validation issue as it goes on the wire: where, and what kind. Never the input. */
export interface WireIssue {
  /** Array indexes, and object keys the schema itself names; any other key reads `"?"`. */
  path: (string | number)[];
  /** A short machine code (zod's issue codes: `invalid_type`, `too_small`, `unrecognized_keys`...). */
  code: string;
  /**
   * What to fix, for a caller whose signature verified (`bad_args`, SPEC §5):
   * `"numbers: required"`, `"unexpected key 'nums'"`. Never on answers to strangers.
   */
  message?: string;
}

/** `result.details` of a validation error: at most {@link MAX_ISSUES} issues, then how many more there were. */
export interface IssueDetails {
  issues: WireIssue[];
  more: number;
}

/**
 * A path with every key the schema does not name replaced by `"?"`, so an
 * answer never reflects a key taken from the request (SPEC §5).
 */
export function safePath(path: readonly PropertyKey[], names: ReadonlySet<string>): (string | number)[] {
  return path.map((segment) =>
    typeof segment === "number" || (typeof segment === "string" && names.has(segment)) ? segment : "?",
  );
}

/** Wire details of a zod error: bounded, no messages (zod's may quote keys), no input. */
export function zodIssueDetails(error: z.ZodError, names: ReadonlySet<string>): IssueDetails {
  const all = error.issues;
  const issues = all.slice(0, MAX_ISSUES).map((issue) => ({ path: safePath(issue.path, names), code: issue.code }));
  return { issues, more: all.length - issues.length };
}

/** Wire details of a single issue. */
export function oneIssue(path: readonly PropertyKey[], code: string, names: ReadonlySet<string>): IssueDetails {
  return { issues: [{ path: safePath(path, names), code }], more: 0 };
}
