import { useMemo, useState } from "preact/hooks";
import type { HistoryEntry, ToolInfo } from "../api.js";
import { clock, ms } from "./format.js";
import { post } from "./http.js";
import { OutcomeView } from "./outcome.js";
import { buildArgs, type FormErrors, fieldsOf, initialValues, SchemaFields } from "./schema-form.js";

/** The catalogue, one tool's form and answer, and this session's calls. */
export function ToolsView(props: {
  tools: ToolInfo[];
  selected: string | undefined;
  history: HistoryEntry[];
  onEntry: (entry: HistoryEntry) => void;
}) {
  const { tools, history, onEntry } = props;
  const tool = tools.find((t) => t.name === props.selected) ?? tools[0];
  return (
    <div class="tools">
      <nav class="catalogue" aria-label="Tools">
        <h2 id="catalogue-heading">Tools</h2>
        {tools.length === 0 ? <p class="muted">No tools to show.</p> : null}
        <ul aria-labelledby="catalogue-heading">
          {tools.map((t) => (
            <li key={t.name}>
              <a href={`#/tools/${encodeURIComponent(t.name)}`} aria-current={t === tool ? "page" : undefined}>
                <code>{t.name}</code>
                {t.kind === "job" ? <span class="badge">job</span> : null}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="tool-main">
        {tool ? <ToolForm key={tool.name} tool={tool} onEntry={onEntry} /> : null}
        <History history={history} />
      </div>
    </div>
  );
}

function ToolForm(props: { tool: ToolInfo; onEntry: (entry: HistoryEntry) => void }) {
  const { tool, onEntry } = props;
  const fields = useMemo(() => fieldsOf(tool.input_schema), [tool]);
  const [values, setValues] = useState(() => (fields ? initialValues(fields) : {}));
  const [raw, setRaw] = useState("{}");
  const [errors, setErrors] = useState<FormErrors>({});
  const [pending, setPending] = useState(false);
  const [entry, setEntry] = useState<HistoryEntry | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const id = `tool-${tool.name.replace(/[^a-zA-Z0-9_-]/g, "_")}`;

  const submit = async (event: Event) => {
    event.preventDefault();
    let args: Record<string, unknown>;
    if (fields) {
      const built = buildArgs(fields, values);
      setErrors(built.errors);
      if (Object.keys(built.errors).length > 0) return;
      args = built.args;
    } else {
      try {
        args = JSON.parse(raw) as Record<string, unknown>;
        if (args === null || typeof args !== "object" || Array.isArray(args)) throw new Error();
        setErrors({});
      } catch {
        setErrors({ _args: "the arguments must be a JSON object" });
        return;
      }
    }
    setPending(true);
    setFailure(undefined);
    try {
      const answer = await post<HistoryEntry>("/api/call", { tool: tool.name, args });
      setEntry(answer);
      onEntry(answer); // the event stream brings it too; the history keeps one of each
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setPending(false);
    }
  };

  return (
    <section class="tool" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`} tabIndex={-1}>
        <code>{tool.name}</code> <span class="badge">{tool.kind === "job" ? "job: answers with a job id" : "sync"}</span>
      </h2>
      <p class="description">{tool.description}</p>
      <form onSubmit={submit} noValidate aria-describedby={`${id}-verify-note`}>
        {fields ? (
          <SchemaFields idPrefix={id} fields={fields} values={values} errors={errors} onChange={setValues} />
        ) : (
          <div class="field">
            <label for={`${id}-raw`}>Arguments (JSON object)</label>
            <textarea id={`${id}-raw`} rows={6} spellcheck={false} value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
            {errors._args ? (
              <p class="field-error" role="alert">
                {errors._args}
              </p>
            ) : null}
          </div>
        )}
        <p class="muted small" id={`${id}-verify-note`}>
          The console signs the call with this client's key; the answer is shown only if it verifies.
        </p>
        <button type="submit" class="primary" disabled={pending} aria-busy={pending}>
          {pending ? "Waiting for the answer…" : tool.kind === "job" ? "Start job" : "Call"}
        </button>
      </form>
      <div class="answer" aria-live="polite">
        {failure ? (
          <p class="outcome unreachable" role="alert">
            The console could not make the call: {failure}
          </p>
        ) : null}
        {entry ? (
          <OutcomeView
            outcome={entry.outcome}
            durationMs={entry.duration_ms}
            {...(entry.job_id ? { jobLink: `#/jobs/${encodeURIComponent(entry.job_id)}` } : {})}
          />
        ) : null}
      </div>
    </section>
  );
}

function summary(entry: HistoryEntry): string {
  const o = entry.outcome;
  if (o.kind === "refused") return `refused: ${o.code}`;
  if (o.kind === "unreachable") return `no answer: ${o.code}`;
  return o.status === "error" ? `error: ${o.code}` : o.status;
}

function History(props: { history: HistoryEntry[] }) {
  const rows = [...props.history].reverse();
  return (
    <section class="history" aria-labelledby="history-heading">
      <h2 id="history-heading">This session's calls</h2>
      {rows.length === 0 ? (
        <p class="muted">No calls yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Tool</th>
              <th scope="col">Outcome</th>
              <th scope="col" class="num">
                Took
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((entry) => (
              <tr key={entry.id} class={`kind-${entry.outcome.kind}`}>
                <td>{clock(entry.started_ms)}</td>
                <td>
                  <code>{entry.tool}</code>
                </td>
                <td>
                  {summary(entry)}
                  {entry.job_id ? (
                    <>
                      {" "}
                      · <a href={`#/jobs/${encodeURIComponent(entry.job_id)}`}>job</a>
                    </>
                  ) : null}
                </td>
                <td class="num">{ms(entry.duration_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
