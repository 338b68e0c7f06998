import type { JsonObject } from "../protocol/canonical.js";
import { canonicalize } from "../protocol/canonical.js";
import type { SmcpError } from "../protocol/errors.js";
import { isJsonObject, type ResponseMessage } from "../protocol/messages.js";
import type { CliIO } from "./io.js";
import { pretty } from "./io.js";

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
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
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

/** What the user can do about an error, when there is something to say. */
export function hintFor(error: { code: string; origin: "remote" | "local"; message?: string }, url?: string): string | undefined {
  const local = error.origin === "local";
  switch (error.code) {
    case "bad_signature":
      return local
        ? "the answer is not signed with the server key you gave: check --server-key / SMCP_SERVER_KEY (or the keyring file)"
        : "the server rejected this client's signature: check --client-secret / SMCP_CLIENT_SECRET matches the server's --client";
    case "unknown_client":
      return "the server does not know this client id: check --client-id / SMCP_CLIENT_ID, or add the client to the server";
    case "wrong_server":
      return "check --server-id / SMCP_SERVER_ID (`smcp call server_identity --server-id …` shows the server's id)";
    case "unknown_tool":
      return "run `smcp tools` to list the server's tools";
    case "stale":
      return "the clocks of this machine and the server differ by more than the freshness window";
    case "rate_limited":
      return "too many requests or open jobs for this client; wait and retry";
    case "unavailable":
      return local
        ? `is the server running at ${url ?? "the URL"}? (\`smcp serve\` starts one; --url points elsewhere)`
        : undefined;
    default:
      return undefined;
  }
}

/** Prints a verified response as the CLI shows it (result on stdout; an error, its issues and a hint on stderr). */
export function report(response: ResponseMessage, io: CliIO, json: boolean): number {
  if (json) return response.ok ? 0 : 1;
  if (response.ok) {
    io.out(pretty(response.result ?? {}));
    return 0;
  }
  io.err(`error: ${oneLine(response.error ?? "(no message)", 500)}`);
  const code = typeof response.result?.code === "string" ? response.result.code : "";
  for (const line of issueLines(response.result?.details) ?? []) io.err(line);
  const hint = hintFor({ code, origin: "remote" });
  if (hint) io.err(`hint: ${hint}`);
  return 1;
}

/** One line for an error the CLI could not turn into a verified answer, and its hint. */
export function describeFailure(error: SmcpError, url?: string): string[] {
  const lines = [`smcp: ${error.code}: ${oneLine(error.message, 500)}`];
  const hint = hintFor(error, url);
  if (hint) lines.push(`hint: ${hint}`);
  return lines;
}
