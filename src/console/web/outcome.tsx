import type { Json, Outcome } from "../api.js";
import { ms, pretty } from "./format.js";

/** A `bad_args` issue as the server gives it (SPEC §5): a path and a code, and now a readable message. */
interface Issue {
  path?: Json;
  code?: Json;
  message?: Json;
}

function issuesOf(details: Json | undefined): Issue[] | undefined {
  if (details === null || typeof details !== "object" || Array.isArray(details)) return undefined;
  const issues = details.issues;
  return Array.isArray(issues)
    ? (issues.filter((i) => i !== null && typeof i === "object" && !Array.isArray(i)) as Issue[])
    : undefined;
}

function issuePath(path: Json | undefined): string {
  if (!Array.isArray(path) || path.length === 0) return "";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

/**
 * What became of a request: a verified answer (its result, or its error with
 * code, message and details), or a refusal (the answer did not verify: the
 * page shows why, never what it claimed), or no answer.
 */
export function OutcomeView(props: { outcome: Outcome; durationMs?: number; jobLink?: string }) {
  const { outcome, durationMs, jobLink } = props;
  const took = durationMs === undefined ? "" : ` · ${ms(durationMs)}`;
  if (outcome.kind === "refused") {
    return (
      <div class="outcome refused" role="alert">
        <p class="verdict">
          <span aria-hidden="true">✖ </span>Answer refused: it failed verification
        </p>
        <p>
          <code>{outcome.code}</code>: {outcome.message}
        </p>
        <p class="muted">Nothing it said is shown: only an answer signed by the server's key counts.{took}</p>
      </div>
    );
  }
  if (outcome.kind === "unreachable") {
    return (
      <div class="outcome unreachable" role="alert">
        <p class="verdict">
          <span aria-hidden="true">⚠ </span>No answer
        </p>
        <p>
          <code>{outcome.code}</code>: {outcome.message}
          {took}
        </p>
      </div>
    );
  }
  if (outcome.status === "error") {
    const issues = issuesOf(outcome.details);
    const rest =
      outcome.details !== undefined &&
      typeof outcome.details === "object" &&
      outcome.details !== null &&
      !Array.isArray(outcome.details)
        ? Object.fromEntries(Object.entries(outcome.details).filter(([k]) => k !== "issues"))
        : outcome.details;
    const hasRest = rest !== undefined && !(typeof rest === "object" && rest !== null && Object.keys(rest).length === 0);
    return (
      <div class="outcome failed" role="alert">
        <p class="verdict">
          <span aria-hidden="true">✖ </span>
          <code class="code">{outcome.code}</code> <span class="message">{outcome.message}</span>
        </p>
        {issues && issues.length > 0 ? (
          <ul class="issues">
            {issues.map((issue, i) => (
              <li key={i}>
                {issue.path !== undefined && issuePath(issue.path) !== "" ? <code>{issuePath(issue.path)}</code> : null}{" "}
                {typeof issue.message === "string"
                  ? issue.message
                  : typeof issue.code === "string"
                    ? issue.code
                    : pretty(issue as Json)}
              </li>
            ))}
          </ul>
        ) : null}
        {hasRest ? (
          <details>
            <summary>Details</summary>
            <pre>{pretty(rest as Json)}</pre>
          </details>
        ) : null}
        <p class="muted">A verified error answer{took}</p>
      </div>
    );
  }
  return (
    <div class="outcome ok">
      <p class="verdict">
        <span aria-hidden="true">✔ </span>Verified answer · <code>{outcome.status}</code>
        {took}
      </p>
      {outcome.status === "accepted" && jobLink ? (
        <p>
          Job accepted: <a href={jobLink}>follow it</a>
        </p>
      ) : null}
      <pre class="result">{pretty(outcome.result)}</pre>
    </div>
  );
}
