import type { JsonObject } from "../protocol/canonical.js";
import { isJsonObject } from "../protocol/messages.js";
import type { JobAccess, JobContext, ServerInfo, ToolDescription } from "../tools/define.js";
import { invokeTool } from "../tools/invoke.js";
import type { RegisteredTool, ToolRegistry } from "../tools/registry.js";
import type { ToolRuns } from "../tools/runs.js";
import { context, contextFrom, failSpan, trace as otelTrace, type Span, SpanKind, spansOff, tracer } from "../util/trace.js";
import type { JobEvent } from "./events.js";
import { maxAttemptsOf } from "./recovery.js";
import type { JobRecord, JobStore } from "./store.js";

/** What job handlers see of the server, whichever process runs them. */
export interface ToolEnvironment {
  readonly server: ServerInfo;
  readonly tools: () => ToolDescription[];
  /** The jobs of one client. */
  readonly jobsFor: (clientId: string) => JobAccess;
}

/** Options for {@link JobRunner}. */
export interface JobRunnerOptions {
  store: JobStore;
  tools: ToolRegistry;
  env: ToolEnvironment;
  /** Names this process in job records. */
  workerId: string;
  /** Called with errors a handler threw that were not {@link SmcpError}s (they reach the wire only as `tool_failed`). */
  onError?: ((error: unknown, context: { tool?: string; jobId?: string }) => void) | undefined;
  /**
   * How long a running job's lease lasts without a heartbeat, in ms. A job
   * whose worker stops renewing it (crash, kill -9) is requeued by any other
   * worker after this long. Renewed every third of it. Default 30,000.
   */
  leaseMs?: number | undefined;
  now?: (() => number) | undefined;
  /** Sees each transition this runner makes (started, done, error, cancelled, requeued). */
  onJob?: ((event: JobEvent) => void) | undefined;
  /** Counts this process's runs; a run that outlives its timeout is overdue there until it ends. */
  runs?: ToolRuns | undefined;
  /** Answer unexpected handler errors with "the tool failed" instead of their message. */
  hideToolErrors?: boolean | undefined;
}

/** Why a running job was aborted from outside (a timeout is the tool's own: `ToolTimeout`). */
export type AbortReason = "cancelled" | "shutdown";

class JobAbort extends Error {
  constructor(readonly reason: AbortReason) {
    super(reason);
  }
}

/** Default lease of a running job: 30 s. */
export const DEFAULT_LEASE_MS = 30_000;

/**
 * Runs one stored job to its end: claim it (`queued` -> `running`), run the
 * handler with an AbortSignal, a timeout and progress reporting, validate
 * the output, and write the outcome with compare-and-set, so a cancel that
 * lands first always wins. Used by every queue (in-process and BullMQ).
 */
export class JobRunner {
  readonly #active = new Map<string, AbortController>();
  readonly #options: JobRunnerOptions;
  readonly #leaseMs: number;
  readonly #now: () => number;
  #heartbeat: NodeJS.Timeout | undefined;
  // Set by abortAll: this process is shutting down and starts nothing more.
  #stopped = false;
  // Resolves at abortAll: a shutdown stops waiting for handlers that ignore their signal.
  #stopping!: () => void;
  readonly #stop = new Promise<void>((resolve) => {
    this.#stopping = resolve;
  });

  constructor(options: JobRunnerOptions) {
    this.#options = options;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** This worker's id, as job records show it. */
  get workerId(): string {
    return this.#options.workerId;
  }

  /** The lease end a job claimed now gets. */
  leaseFromNow(): number {
    return this.#now() + this.#leaseMs;
  }

  /**
   * Runs the job if it is still queued; resolves when it has ended. After
   * {@link abortAll} it leaves the job queued (returns false): the queue dispatches it again.
   */
  async run(jobId: string): Promise<boolean> {
    if (this.#stopped) return false;
    const job = await this.#options.store.start(jobId, this.#options.workerId, this.leaseFromNow());
    if (!job) return true; // cancelled, expired or taken by another worker
    await this.runClaimed(job);
    return true;
  }

  /** Runs a job this worker has already started (claimed) in the store. */
  async runClaimed(job: JobRecord): Promise<void> {
    if (this.#stopped) {
      // Claimed while this process shuts down (abortAll came first): give it back at once, unstarted.
      const { store, tools } = this.#options;
      if ((await store.requeue(job.id, maxAttemptsOf(tools, job.tool))) === "queued") this.#emit(job, "requeued");
      return;
    }
    this.#emit(job, "started", { queueWaitMs: Math.max(0, this.#now() - job.createdAt) });
    const controller = new AbortController();
    this.#active.set(job.id, controller);
    this.#heartbeat ??= setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.#leaseMs / 3)));
    let overdue: Promise<void> | undefined;
    try {
      overdue = (await this.#execute(job, controller))?.settled;
    } finally {
      this.#active.delete(job.id);
      if (this.#active.size === 0) {
        clearInterval(this.#heartbeat);
        this.#heartbeat = undefined;
      }
    }
    // The job is answered, but its handler ignored the abort and still runs: its slot stays taken
    // until it really ends, so a tool that ignores timeouts can't run more than the concurrency at once.
    if (overdue) await Promise.race([overdue, this.#stop]);
  }

  // Renews the leases of the jobs running here; a job cancelled from another
  // process shows up as lost, and is aborted here.
  async #renew(): Promise<void> {
    const ids = [...this.#active.keys()];
    if (ids.length === 0) return;
    try {
      const lost = await this.#options.store.heartbeat(this.#options.workerId, ids, this.leaseFromNow());
      for (const id of lost) this.abort(id, "cancelled");
    } catch (error) {
      // Store unreachable: keep working; if the lease lapses the job may run again elsewhere (at-least-once).
      this.#options.onError?.(error, {});
    }
  }

  /** Aborts the job if it runs in this process. True when it did. */
  abort(jobId: string, reason: AbortReason = "cancelled"): boolean {
    const controller = this.#active.get(jobId);
    if (!controller) return false;
    controller.abort(new JobAbort(reason));
    return true;
  }

  /**
   * Aborts every job running here (shutdown): they go back to `queued` for
   * another worker or the next start. From then on this runner starts nothing.
   */
  abortAll(): void {
    this.#stopped = true;
    this.#stopping();
    for (const controller of this.#active.values()) controller.abort(new JobAbort("shutdown"));
  }

  /** Runs the job and writes its outcome; gives its handler's real end when that comes later (wrapped: an async function would wait for a promise it returns). */
  async #execute(job: JobRecord, controller: AbortController): Promise<{ settled: Promise<void> } | undefined> {
    const { store, tools } = this.#options;
    const entry = tools.entry(job.tool);
    if (entry?.tool.kind !== "job") {
      // Routing gives a worker only the tools it has; this is a job whose tool was removed since it was queued.
      await store.finish(job.id, {
        state: "error",
        error: { code: "unknown_tool", message: "no worker offers this tool any more" },
      });
      return;
    }
    const checked = entry.args.check(job.args);
    if (!checked.ok) {
      await store.finish(job.id, {
        state: "error",
        error: { code: "bad_args", message: "the stored arguments no longer match the tool", details: checked.details },
      });
      return;
    }
    const begun = this.#now();
    // No SDK and no trace to join: the span would be a no-op, so none is made.
    if (spansOff(Boolean(job.trace))) return await this.#invoke(job, entry, checked.data, controller, begun, undefined);
    // The run joins the trace of the call that started the job (SPEC §10), in whatever process runs it.
    const parent = contextFrom(job.trace ? { traceparent: job.trace } : undefined);
    const span = tracer().startSpan(`execute_tool ${job.tool}`, { kind: SpanKind.INTERNAL }, parent);
    if (span.isRecording()) {
      span.setAttribute("gen_ai.operation.name", "execute_tool");
      span.setAttribute("gen_ai.tool.name", job.tool);
      span.setAttribute("smcp.client.id", job.clientId);
      span.setAttribute("smcp.job.id", job.id);
      span.setAttribute("smcp.job.attempt", job.attempts);
    }
    try {
      return await context.with(otelTrace.setSpan(parent, span), () =>
        this.#invoke(job, entry, checked.data, controller, begun, span),
      );
    } finally {
      span.end();
    }
  }

  async #invoke(
    job: JobRecord,
    entry: RegisteredTool,
    args: unknown,
    controller: AbortController,
    begun: number,
    span: Span | undefined,
  ): Promise<{ settled: Promise<void> } | undefined> {
    const { store, env } = this.#options;
    const outcome = await invokeTool(entry.tool, args, {
      signal: controller.signal,
      context: (signal): JobContext => ({
        clientId: job.clientId,
        requestId: job.id,
        server: env.server,
        signal,
        jobs: env.jobsFor(job.clientId),
        tools: env.tools,
        jobId: job.id,
        attempt: job.attempts,
        progress: async (progress: JsonObject) => {
          if (!isJsonObject(progress)) throw new TypeError("progress must be a JSON object");
          if (!signal.aborted) await store.progress(job.id, progress);
        },
      }),
      report: (error) => this.#options.onError?.(error, { tool: job.tool, jobId: job.id }),
      runs: this.#options.runs,
      hideErrors: this.#options.hideToolErrors,
    });
    const runMs = () => Math.max(0, this.#now() - begun);
    if (span) annotateRun(span, outcome.kind, outcome.kind === "failed" ? outcome.error.code : undefined);
    switch (outcome.kind) {
      case "output":
        if (await store.finish(job.id, { state: "done", result: outcome.output })) this.#emit(job, "done", { runMs: runMs() });
        return;
      case "reply": // only sync protocol tools answer with a status
        await this.#fail(job, { code: "bad_output", message: "a job cannot answer with a status" }, runMs());
        return;
      case "failed": {
        const { code, message, details } = outcome.error;
        await this.#fail(job, details === undefined ? { code, message } : { code, message, details }, runMs());
        return outcome.settled && { settled: outcome.settled };
      }
      case "aborted":
        await this.#settleAbort(job, outcome.reason, runMs());
        return outcome.settled && { settled: outcome.settled };
    }
  }

  async #fail(job: JobRecord, error: { code: string; message: string; details?: unknown }, runMs: number): Promise<void> {
    if (await this.#options.store.finish(job.id, { state: "error", error }))
      this.#emit(job, "error", { code: error.code, runMs });
  }

  #emit(job: JobRecord, event: JobEvent["event"], extra: Partial<JobEvent> = {}): void {
    const onJob = this.#options.onJob;
    if (!onJob) return;
    try {
      onJob({ jobId: job.id, tool: job.tool, clientId: job.clientId, event, ...extra });
    } catch {
      // A failing log or metrics sink must not stop a job.
    }
  }

  async #settleAbort(job: JobRecord, reason: unknown, runMs: number): Promise<void> {
    const { store, tools } = this.#options;
    if (reason instanceof JobAbort && reason.reason === "shutdown") {
      if ((await store.requeue(job.id, maxAttemptsOf(tools, job.tool))) === "queued") this.#emit(job, "requeued");
    } else {
      // cancelled: the store already says so; nothing to write.
      this.#emit(job, "cancelled", { runMs });
    }
  }
}

/** The run span's end state: an error type for every outcome but an output, and the status the poller will see. */
function annotateRun(span: Span, kind: string, code: string | undefined): void {
  if (kind === "failed") failSpan(span, code ?? "failed");
  else if (kind === "aborted") failSpan(span, "aborted");
  else if (kind === "reply") failSpan(span, "bad_output");
  if (span.isRecording()) span.setAttribute("smcp.status", kind === "output" ? "done" : "error");
}
