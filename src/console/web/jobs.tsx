import { useCallback, useEffect, useState } from "preact/hooks";
import type { JobInfo, JobList, JobState, Outcome } from "../api.js";
import { age, clock, fraction, ms, pretty, progressText, shortId } from "./format.js";
import { get, post } from "./http.js";
import { OutcomeView } from "./outcome.js";

const STATES: JobState[] = ["queued", "running", "done", "error", "cancelled"];

function isOpen(job: JobInfo): boolean {
  return job.state === "queued" || job.state === "running";
}

/** Re-renders every second (ages, while a list is shown). */
function useTick(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** A state as a labelled badge (its word, never only its colour). */
export function StateBadge(props: { state: JobState | null }) {
  const state = props.state ?? "unknown";
  return <span class={`state state-${state}`}>{state}</span>;
}

/** A progress bar for `{done, total}`, else the progress in words. */
export function Progress(props: { job: JobInfo }) {
  const { job } = props;
  const part = job.state === "done" ? 1 : fraction(job.progress);
  const text = job.state === "done" ? "done" : progressText(job.progress);
  if (part === undefined) return <span class="progress-text">{text || (isOpen(job) ? "…" : "")}</span>;
  return (
    <span class="progress">
      <progress max={1} value={part} aria-label={`progress of job ${job.job_id}`} />
      <span class="progress-text">{text}</span>
    </span>
  );
}

/** Cancels a job; reports the verified answer through `onOutcome`. */
function CancelButton(props: { job: JobInfo; onOutcome: (outcome: Outcome | string) => void }) {
  const [pending, setPending] = useState(false);
  const { job, onOutcome } = props;
  return (
    <button
      type="button"
      class="danger small"
      disabled={pending}
      aria-label={`Cancel job ${job.job_id}`}
      onClick={async () => {
        setPending(true);
        try {
          const answer = await post<{ outcome: Outcome; job: JobInfo }>(`/api/jobs/${encodeURIComponent(job.job_id)}/cancel`, {});
          onOutcome(answer.outcome);
        } catch (error) {
          onOutcome(error instanceof Error ? error.message : String(error));
        } finally {
          setPending(false);
        }
      }}
    >
      Cancel
    </button>
  );
}

/** Jobs of this client (`list_jobs`), filtered by state and tool, updated live from the event stream. */
export function JobsView(props: { jobs: Map<string, JobInfo>; toolNames: string[]; onJobs: (jobs: JobInfo[]) => void }) {
  const { jobs, toolNames, onJobs } = props;
  const [state, setState] = useState("");
  const [tool, setTool] = useState("");
  const [ids, setIds] = useState<string[] | undefined>(undefined);
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const [cancelled, setCancelled] = useState<Outcome | string | undefined>(undefined);
  const now = useTick();

  const load = useCallback(async () => {
    const query = new URLSearchParams();
    if (state) query.set("state", state);
    if (tool) query.set("tool", tool);
    try {
      const list = await get<JobList>(`/api/jobs?${query}`);
      setOutcome(list.outcome);
      setFailure(undefined);
      onJobs(list.jobs);
      setIds(list.jobs.map((j) => j.job_id));
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    }
  }, [state, tool, onJobs]);

  useEffect(() => {
    void load();
    // New jobs started elsewhere (another client session, `smcp call`) show up on the next listing.
    const timer = setInterval(() => void load(), 5000);
    return () => clearInterval(timer);
  }, [load]);

  // Jobs the console learns of from its event stream (e.g. one just started here) join the list when they match.
  const known = ids ?? [];
  const extra = [...jobs.values()].filter(
    (j) =>
      !known.includes(j.job_id) &&
      j.submitted_ms !== undefined &&
      (state === "" || j.state === state) &&
      (tool === "" || j.tool === tool),
  );
  const rows = [
    ...extra.sort((a, b) => (b.submitted_ms ?? 0) - (a.submitted_ms ?? 0)),
    ...known.map((id) => jobs.get(id)),
  ].filter((j): j is JobInfo => j !== undefined && (state === "" || j.state === state));
  const tools = [
    ...new Set([...toolNames, ...[...jobs.values()].map((j) => j.tool).filter((t): t is string => t !== null)]),
  ].sort();
  const showClient = rows.some((j) => j.client_id !== undefined);

  return (
    <section class="jobs" aria-labelledby="jobs-heading">
      <h2 id="jobs-heading" tabIndex={-1}>
        Jobs
      </h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <label for="filter-state">State</label>
        <select id="filter-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">any</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <label for="filter-tool">Tool</label>
        <select id="filter-tool" value={tool} onChange={(e) => setTool(e.currentTarget.value)}>
          <option value="">any</option>
          {tools.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <button type="submit">Refresh</button>
      </form>
      {failure ? (
        <p class="outcome unreachable" role="alert">
          {failure}
        </p>
      ) : null}
      {outcome && !(outcome.kind === "answer" && outcome.status === "ok") ? <OutcomeView outcome={outcome} /> : null}
      {cancelled !== undefined ? (
        typeof cancelled === "string" ? (
          <p class="outcome unreachable" role="alert">
            {cancelled}
          </p>
        ) : cancelled.kind !== "answer" || cancelled.status === "error" ? (
          <OutcomeView outcome={cancelled} />
        ) : null
      ) : null}
      {ids === undefined ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted">No jobs{state || tool ? " match these filters" : ""}.</p>
      ) : (
        <table class="job-table">
          <caption class="muted small">Newest first; live: progress arrives as the server reports it.</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              {showClient ? <th scope="col">Client</th> : null}
              <th scope="col">Tool</th>
              <th scope="col">State</th>
              <th scope="col">Age</th>
              <th scope="col">Progress</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((job) => {
              const since = job.created_ms ?? job.submitted_ms;
              return (
                <tr key={job.job_id} data-job-id={job.job_id}>
                  <td>
                    <a href={`#/jobs/${encodeURIComponent(job.job_id)}`} title={job.job_id}>
                      <code>{shortId(job.job_id)}</code>
                    </a>
                  </td>
                  {showClient ? <td>{job.client_id ?? ""}</td> : null}
                  <td>
                    <code>{job.tool ?? "?"}</code>
                  </td>
                  <td>
                    <StateBadge state={job.state} />
                  </td>
                  <td>{since === undefined ? "" : age(now - since)}</td>
                  <td>
                    <Progress job={job} />
                  </td>
                  <td>{isOpen(job) ? <CancelButton job={job} onOutcome={setCancelled} /> : null}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** One job: its arguments (if this console started it), progress timeline, result or error, timings; cancel. */
export function JobView(props: { jobId: string; job: JobInfo | undefined; onJob: (job: JobInfo) => void }) {
  const { jobId, job, onJob } = props;
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const [cancelOutcome, setCancelOutcome] = useState<Outcome | string | undefined>(undefined);

  const load = useCallback(
    async (refresh: boolean) => {
      try {
        onJob(await get<JobInfo>(`/api/jobs/${encodeURIComponent(jobId)}${refresh ? "?refresh=1" : ""}`));
        setFailure(undefined);
      } catch (error) {
        setFailure(error instanceof Error ? error.message : String(error));
      }
    },
    [jobId, onJob],
  );
  useEffect(() => {
    void load(false);
  }, [load]);

  const first = job?.timeline[0]?.at_ms ?? job?.accepted_ms;
  return (
    <section class="job" aria-labelledby="job-heading">
      <p>
        <a href="#/jobs">← All jobs</a>
      </p>
      <h2 id="job-heading" tabIndex={-1}>
        Job <code class="wrap">{jobId}</code>
      </h2>
      {failure ? (
        <p class="outcome unreachable" role="alert">
          {failure}
        </p>
      ) : null}
      {!job ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <div class="job-status" aria-live="polite">
            <p>
              <code>{job.tool ?? "?"}</code> · <StateBadge state={job.state} /> <Progress job={job} />
            </p>
            {job.note ? <p class="muted">{job.note}</p> : null}
          </div>
          <div class="actions">
            {isOpen(job) ? <CancelButton job={job} onOutcome={setCancelOutcome} /> : null}
            <button type="button" class="small" onClick={() => void load(true)}>
              Poll now
            </button>
          </div>
          {cancelOutcome !== undefined ? (
            typeof cancelOutcome === "string" ? (
              <p class="outcome unreachable" role="alert">
                {cancelOutcome}
              </p>
            ) : (
              <div>
                <h3>Cancel</h3>
                <OutcomeView outcome={cancelOutcome} />
              </div>
            )
          ) : null}
          {job.problem ? (
            <div>
              <h3>Last poll</h3>
              <OutcomeView outcome={job.problem} />
            </div>
          ) : null}
          {job.state === "done" ? (
            <div>
              <h3>Result</h3>
              <p class="verdict ok-text">
                <span aria-hidden="true">✔ </span>Verified
              </p>
              <pre class="result">{pretty(job.result)}</pre>
            </div>
          ) : null}
          {job.error ? (
            <div>
              <h3>{job.state === "cancelled" ? "Cancelled" : "Error"}</h3>
              <OutcomeView outcome={{ kind: "answer", status: "error", result: null, ...job.error }} />
            </div>
          ) : null}
          <h3>Arguments</h3>
          {job.args ? (
            <pre>{pretty(job.args)}</pre>
          ) : (
            <p class="muted">
              Not known: the server does not return a job's arguments, and this job was not started from this console session.
            </p>
          )}
          <h3>Timings</h3>
          <dl class="timings">
            {job.created_ms !== undefined ? (
              <>
                <dt>Created (server clock)</dt>
                <dd>{clock(job.created_ms)}</dd>
              </>
            ) : null}
            {job.submitted_ms !== undefined ? (
              <>
                <dt>Submitted</dt>
                <dd>{clock(job.submitted_ms)}</dd>
              </>
            ) : null}
            {job.accepted_ms !== undefined && job.submitted_ms !== undefined ? (
              <>
                <dt>Accepted after</dt>
                <dd>{ms(job.accepted_ms - job.submitted_ms)}</dd>
              </>
            ) : null}
            {job.finished_ms !== undefined ? (
              <>
                <dt>Finished (seen)</dt>
                <dd>
                  {clock(job.finished_ms)}
                  {job.submitted_ms !== undefined ? `, ${ms(job.finished_ms - job.submitted_ms)} after it was submitted` : ""}
                </dd>
              </>
            ) : null}
            {job.updated_ms !== undefined ? (
              <>
                <dt>Last change (server clock)</dt>
                <dd>{clock(job.updated_ms)}</dd>
              </>
            ) : null}
          </dl>
          <h3>Timeline</h3>
          {job.timeline.length === 0 ? (
            <p class="muted">No verified observation yet.</p>
          ) : (
            <ol class="timeline">
              {job.timeline.map((point) => (
                <li key={`${point.at_ms}-${point.state}-${point.version}`}>
                  <span class="t">+{ms(point.at_ms - (first ?? point.at_ms))}</span> <StateBadge state={point.state} />{" "}
                  {point.state === "done" ? "" : progressText(point.progress)}
                </li>
              ))}
            </ol>
          )}
        </>
      )}
    </section>
  );
}
