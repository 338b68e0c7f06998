import { useEffect, useState } from "preact/hooks";
import type { Json, MetricsInfo, SessionInfo } from "../api.js";
import { Sparkline } from "./chart.js";
import { pretty } from "./format.js";
import { get } from "./http.js";
import { OutcomeView } from "./outcome.js";

/** The server's identity (verified `server_identity`), how answers are verified, and its metrics as small charts. */
export function ServerView(props: {
  session: SessionInfo;
  metrics: MetricsInfo | undefined;
  onMetrics: (m: MetricsInfo) => void;
}) {
  const { session, metrics, onMetrics } = props;
  const identity = session.identity;
  const result = identity.kind === "answer" && identity.status === "ok" ? identity.result : null;
  const capabilities = result?.capabilities;
  const caps =
    capabilities !== null && typeof capabilities === "object" && !Array.isArray(capabilities) ? capabilities : undefined;
  const signatures = Array.isArray(caps?.signatures) ? caps.signatures : [];
  const keys = Array.isArray(caps?.public_keys) ? caps.public_keys : [];
  const [failure, setFailure] = useState<string | undefined>(undefined);

  useEffect(() => {
    get<MetricsInfo>("/api/metrics").then(onMetrics, (error: unknown) =>
      setFailure(error instanceof Error ? error.message : String(error)),
    );
  }, [onMetrics]);

  return (
    <div class="server">
      <section aria-labelledby="identity-heading">
        <h2 id="identity-heading" tabIndex={-1}>
          Server
        </h2>
        {result ? (
          <dl class="identity">
            <dt>Server id</dt>
            <dd>
              <code>{String(result.server_id)}</code>
            </dd>
            <dt>Key fingerprint</dt>
            <dd>
              <code>{String(result.fingerprint)}</code>
            </dd>
            <dt>Signature algorithms</dt>
            <dd>{signatures.length > 0 ? signatures.map((s: Json) => <code key={String(s)}>{String(s)} </code>) : "—"}</dd>
            <dt>Public keys</dt>
            <dd>
              {keys.length > 0
                ? keys.map((k: Json) => (
                    <code class="wrap" key={String(k)}>
                      {String(k)}
                    </code>
                  ))
                : "none published (HMAC only)"}
            </dd>
            <dt>URL</dt>
            <dd>
              <code>{session.url}</code>
            </dd>
            <dt>This console signs as</dt>
            <dd>
              <code>{session.client_id}</code>, and verifies answers with{" "}
              {session.verification === "ed25519" ? "the server's pinned Ed25519 public key" : "the server's HMAC secret"}
            </dd>
          </dl>
        ) : (
          <OutcomeView outcome={identity} />
        )}
        {caps ? (
          <details>
            <summary>Capabilities</summary>
            <pre>{pretty(caps)}</pre>
          </details>
        ) : null}
      </section>
      <section aria-labelledby="metrics-heading">
        <h2 id="metrics-heading">Metrics</h2>
        {failure ? <p class="outcome unreachable">{failure}</p> : null}
        {!metrics ? (
          <p class="muted">Loading…</p>
        ) : !metrics.available ? (
          <p class="muted">
            No metrics
            {metrics.url ? (
              <>
                {" "}
                at <code>{metrics.url}</code>
              </>
            ) : null}
            : {metrics.reason}. Start the server with <code>--metrics</code>, or give the console <code>--metrics-url</code>.
          </p>
        ) : (
          <>
            <p class="muted small">
              From <code>{metrics.url}</code> (unsigned, read by the console every 2 s while a page is open; includes the
              console's own requests). Latency leaves out held long polls.
            </p>
            <div class="charts">
              <Sparkline label="Requests" unit="/s" values={metrics.points.map((p) => p.rate)} />
              <Sparkline label="Mean latency" unit="ms" values={metrics.points.map((p) => p.mean_ms)} />
              <Sparkline label="p95 latency" unit="ms" values={metrics.points.map((p) => p.p95_ms)} />
            </div>
            <h3>Errors by code</h3>
            <ErrorBars errors={metrics.errors} total={metrics.total} />
          </>
        )}
      </section>
    </div>
  );
}

function ErrorBars(props: { errors: Record<string, number>; total: number }) {
  const entries = Object.entries(props.errors).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return <p class="muted">No error answers since the server started ({props.total} answers).</p>;
  const max = Math.max(...entries.map(([, n]) => n));
  return (
    <table class="bars">
      <caption class="muted small">Since the server started, of {props.total} answers</caption>
      <tbody>
        {entries.map(([code, n]) => (
          <tr key={code}>
            <th scope="row">
              <code>{code}</code>
            </th>
            <td class="num">{n}</td>
            <td class="bar-cell">
              <meter min={0} max={max} value={n} aria-label={`${code}: ${n}`} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
