import "./styles.css";
import { render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { HistoryEntry, JobInfo, MetricsInfo, SessionInfo } from "../api.js";
import { ApiError, eventsUrl, get } from "./http.js";
import { JobsView, JobView } from "./jobs.js";
import { ServerView } from "./server.js";
import { ToolsView } from "./tools.js";

/** The route, from the URL's hash (the query keeps the token; the hash moves between views). */
function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, "")
      .split("/")
      .filter((s) => s !== "")
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** The verification banner: what "verified" means here, or that the server's answers do not verify. */
function Banner(props: { session: SessionInfo }) {
  const { session } = props;
  const identity = session.identity;
  if (identity.kind === "answer" && identity.status === "ok") {
    const fingerprint = String(identity.result?.fingerprint ?? "?");
    return (
      <p class="banner verified" id="verification">
        <span aria-hidden="true">✔ </span>
        Every answer shown here was verified by this console: signed by server <code>{session.server_id}</code>'s key (fingerprint{" "}
        <code class="fingerprint">{fingerprint}</code>), answering the request sent, fresh. Your keys stay in the console process.
      </p>
    );
  }
  if (identity.kind === "refused") {
    return (
      <p class="banner refused" id="verification" role="alert">
        <span aria-hidden="true">✖ </span>
        The server's answers fail verification (<code>{identity.code}</code>: {identity.message}). Nothing they say is shown.
      </p>
    );
  }
  const why = identity.kind === "unreachable" ? `${identity.code}: ${identity.message}` : `${identity.code}: ${identity.message}`;
  return (
    <p class="banner unreachable" id="verification" role="alert">
      <span aria-hidden="true">⚠ </span>
      No verified identity from <code>{session.url}</code> ({why}).
    </p>
  );
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<SessionInfo | undefined>(undefined);
  const [fatal, setFatal] = useState<string | undefined>(undefined);
  const [history, setHistory] = useState<HistoryEntry[]>([]);
  const [jobs, setJobs] = useState<Map<string, JobInfo>>(new Map());
  const [metrics, setMetrics] = useState<MetricsInfo | undefined>(undefined);
  const [live, setLive] = useState<"connecting" | "on" | "off">("connecting");
  const main = useRef<HTMLElement>(null);

  const mergeJobs = useCallback((list: JobInfo[]) => {
    setJobs((old) => {
      const next = new Map(old);
      for (const job of list) next.set(job.job_id, job);
      return next;
    });
  }, []);
  const mergeJob = useCallback((job: JobInfo) => mergeJobs([job]), [mergeJobs]);
  const addEntry = useCallback((entry: HistoryEntry) => {
    setHistory((old) => (old.some((h) => h.id === entry.id) ? old : [...old, entry]));
  }, []);

  const loadSession = useCallback(async () => {
    try {
      const info = await get<SessionInfo>("/api/session");
      setSession(info);
      setHistory(info.history);
      setFatal(undefined);
    } catch (error) {
      setFatal(
        error instanceof ApiError && error.status === 401
          ? "This page's token was refused: open the URL that `smcp console` printed."
          : error instanceof Error
            ? error.message
            : String(error),
      );
    }
  }, []);

  useEffect(() => {
    void loadSession();
    // Job progress (fed by the console's long polls), new calls and metrics, pushed as they happen.
    const events = new EventSource(eventsUrl());
    events.onopen = () => setLive("on");
    events.onerror = () => setLive(events.readyState === EventSource.CLOSED ? "off" : "connecting");
    events.addEventListener("job", (e) => mergeJob(JSON.parse((e as MessageEvent<string>).data) as JobInfo));
    events.addEventListener("history", (e) => addEntry(JSON.parse((e as MessageEvent<string>).data) as HistoryEntry));
    events.addEventListener("metrics", (e) => setMetrics(JSON.parse((e as MessageEvent<string>).data) as MetricsInfo));
    return () => events.close();
  }, [loadSession, mergeJob, addEntry]);

  // After a change of view, focus its heading: keyboard and screen-reader users land on what they chose.
  const view = route[0] ?? "tools";
  const viewKey = route.slice(0, 2).join("/");
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector<HTMLElement>("h2[tabindex]")?.focus();
  }, [viewKey]);

  const nav = [
    ["tools", "Tools"],
    ["jobs", "Jobs"],
    ["server", "Server"],
  ] as const;

  return (
    <>
      <header>
        <h1>smcp console</h1>
        <nav aria-label="Views">
          <ul>
            {nav.map(([id, label]) => (
              <li key={id}>
                <a href={`#/${id}`} aria-current={view === id ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <p class="live muted small" aria-live="polite">
          Live updates: <span class={`live-${live}`}>{live}</span>
        </p>
      </header>
      {session ? <Banner session={session} /> : null}
      <main ref={main}>
        {fatal ? (
          <p class="outcome unreachable" role="alert">
            {fatal}
          </p>
        ) : !session ? (
          <p class="muted">Loading…</p>
        ) : view === "jobs" && route[1] !== undefined ? (
          <JobView jobId={route[1]} job={jobs.get(route[1])} onJob={mergeJob} />
        ) : view === "jobs" ? (
          <JobsView jobs={jobs} toolNames={session.tools.filter((t) => t.kind === "job").map((t) => t.name)} onJobs={mergeJobs} />
        ) : view === "server" ? (
          <ServerView session={session} metrics={metrics} onMetrics={setMetrics} />
        ) : (
          <>
            {session.tools_outcome.kind !== "answer" || session.tools_outcome.status === "error" ? (
              <p class="outcome unreachable" role="alert">
                The tool list could not be read: {"code" in session.tools_outcome ? session.tools_outcome.code : ""}{" "}
                {"message" in session.tools_outcome ? session.tools_outcome.message : ""}
              </p>
            ) : null}
            <ToolsView tools={session.tools} selected={route[1]} history={history} onEntry={addEntry} />
          </>
        )}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
