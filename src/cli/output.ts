import { detailLines, oneLine } from "../client/present.js";
import type { SmcpError } from "../protocol/errors.js";
import { isJsonObject, type ResponseMessage } from "../protocol/messages.js";

export { describeProgress, detailLines, oneLine } from "../client/present.js";

import type { CliIO } from "./io.js";
import { pretty } from "./io.js";

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
  const scope = code === "forbidden" && isJsonObject(response.result?.details) ? response.result.details.scope : undefined;
  if (scope === undefined) for (const line of detailLines(response.result?.details)) io.err(line);
  const hint =
    typeof scope === "string"
      ? `this client's scopes do not allow it: the server's operator can grant ${oneLine(scope, 140)} (smcp clients scopes CLIENT … ${oneLine(scope, 140)}, smcp serve --scope CLIENT=${oneLine(scope, 140)}, or "scopes" in the keyring file)`
      : hintFor({ code, origin: "remote" });
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
