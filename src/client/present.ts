import { canonicalize, type JsonObject } from "../protocol/canonical.js";
import { isJsonObject } from "../protocol/messages.js";

// How a verified answer is shown to a person (the CLI, the MCP bridge's text, the console):
// text from a server reaches a terminal or a model only through these.

/**
 * One line for a job's progress. The convention (documented in the README):
 * `{done, total}` numbers draw a bar, `{message}` is shown as text, both
 * together give a bar and the message; anything else is shown as JSON.
 */
export function describeProgress(progress: JsonObject | null, state: string): string {
  if (!progress) return state;
  const { done, total, message } = progress;
  const text = typeof message === "string" ? oneLine(message) : undefined;
  if (typeof done === "number" && typeof total === "number" && total > 0) {
    const width = 24;
    const filled = Math.max(0, Math.min(width, Math.round((done / total) * width)));
    const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
    return text ? `${bar} ${text}` : bar;
  }
  if (text) return `${state}: ${text}`;
  return `${state} ${canonicalize(progress)}`;
}

/** Control characters out, one line, bounded: text from a server reaches the terminal only this way. */
export function oneLine(text: string, max = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
  return (clean.length > max ? `${clean.slice(0, max)}...` : clean).toWellFormed();
}

/** The lines of a `bad_args` / `bad_envelope` details object: one per issue, then how many more. */
export function issueLines(details: unknown): string[] | undefined {
  if (!isJsonObject(details) || !Array.isArray(details.issues)) return undefined;
  const lines = details.issues.map((issue) => {
    const { path, code, message } = isJsonObject(issue) ? issue : {};
    // The server's own words when it gave them (SPEC §5: "numbers: required"), else where and what kind.
    if (typeof message === "string" && message !== "") return `  ${oneLine(message, 300)}`;
    const where =
      Array.isArray(path) && path.length > 0
        ? path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")
        : "(top)";
    return `  ${oneLine(where.replace(/^\./, ""), 120)}: ${oneLine(String(code ?? "invalid"), 60)}`;
  });
  if (typeof details.more === "number" && details.more > 0) lines.push(`  ... and ${details.more} more`);
  return lines;
}

/**
 * The lines a failure's `details` are shown as: the issues of `bad_args` /
 * `bad_envelope` one per line, else any other details (a `ToolError`'s, say
 * `{hint: "give a name"}`) as one bounded line of JSON; a `forbidden`
 * answer's `scope` is left to the caller's own hint.
 */
export function detailLines(details: unknown): string[] {
  const issues = issueLines(details);
  if (issues) return issues;
  if (!isJsonObject(details) || Object.keys(details).length === 0) return [];
  return [`  details: ${oneLine(canonicalize(details), 500)}`];
}
