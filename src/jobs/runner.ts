import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import { describeIssues, isJsonObject } from "../protocol/messages.js";
import type { JobAccess, ServerInfo, ToolDescription } from "../tools/define.js";
import type { ToolRegistry } from "../tools/registry.js";
import { rejectOnAbort } from "../util/abort.js";
import type { JobError, JobRecord, JobStore } from "./store.js";

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
}

/** Why a running job was aborted. */
export type AbortReason = "cancelled" | "timeout" | "shutdown";

class JobAbort extends Error {
  constructor(readonly reason: AbortReason) {
    super(reason);
  }
}

/** Default attempts for a job whose worker died. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Default lease of a running job: 30 s. */
export const DEFAULT_LEASE_MS = 30_000;

/** Attempts allowed for a tool's jobs. */
export function maxAttemptsOf(tools: ToolRegistry, name: string): number {
  const tool = tools.get(name);
  return tool?.kind === "job" ? (tool.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) : 1;
}

/**
 * Requeues running jobs whose lease lapsed (their worker died) — or fails
 * them once their attempts are spent — and hands each requeued job to
 * `requeued` so it is dispatched again. Safe to run from every worker at
 * once: each transition is a compare-and-set. Returns how many were requeued.
 */
export async function recoverStaleJobs(
  store: JobStore,
  tools: ToolRegistry,
  now: number,
  requeued: (job: JobRecord) => Promise<void>,
): Promise<number> {
  let count = 0;
  for (const job of await store.stale(now)) {
    const state = await store.requeue(job.id, maxAttemptsOf(tools, job.tool), now);
    if (state !== "queued") continue;
    count++;
    await requeued({ ...job, state: "queued", workerId: null, leaseUntil: null });
  }
  return count;
}

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

  /** Runs the job if it is still queued; resolves when it has ended. */
  async run(jobId: string): Promise<void> {
    const job = await this.#options.store.start(jobId, this.#options.workerId, this.leaseFromNow());
    if (!job) return; // cancelled, expired or taken by another worker
    await this.runClaimed(job);
  }

  /** Runs a job this worker has already started (claimed) in the store. */
  async runClaimed(job: JobRecord): Promise<void> {
    const controller = new AbortController();
    this.#active.set(job.id, controller);
    this.#heartbeat ??= setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.#leaseMs / 3)));
    try {
      await this.#execute(job, controller);
    } finally {
      this.#active.delete(job.id);
      if (this.#active.size === 0) {
        clearInterval(this.#heartbeat);
        this.#heartbeat = undefined;
      }
    }
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

  /** Aborts every job running here (shutdown): they go back to `queued` for another worker or the next start. */
  abortAll(): void {
    for (const controller of this.#active.values()) controller.abort(new JobAbort("shutdown"));
  }

  async #execute(job: JobRecord, controller: AbortController): Promise<void> {
    const { store, tools, env } = this.#options;
    const tool = tools.get(job.tool);
    if (tool?.kind !== "job") {
      await store.finish(job.id, { state: "error", error: { code: "unknown_tool", message: `no job tool '${job.tool}' here` } });
      return;
    }
    const parsed = tool.input.safeParse(job.args);
    if (!parsed.success) {
      await store.finish(job.id, {
        state: "error",
        error: { code: "bad_args", message: "stored arguments no longer match the tool", details: describeIssues(parsed.error) },
      });
      return;
    }
    const signal = controller.signal;
    const timer =
      tool.timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(new JobAbort("timeout")), tool.timeoutMs);
    try {
      const ctx = {
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
      };
      // A handler that ignores its signal still loses the race: its late result is discarded.
      const output = await Promise.race([Promise.resolve(tool.handler(parsed.data, ctx)), rejectOnAbort(signal)]);
      const checked = tool.output.safeParse(output);
      if (!checked.success || !isJsonObject(checked.data)) {
        await store.finish(job.id, {
          state: "error",
          error: {
            code: "bad_output",
            message: "the job's output does not match its output schema",
            ...(checked.success ? {} : { details: describeIssues(checked.error) }),
          },
        });
        return;
      }
      await store.finish(job.id, { state: "done", result: checked.data });
    } catch (error) {
      await this.#settleFailure(job, tool.timeoutMs, signal, error);
    } finally {
      clearTimeout(timer);
    }
  }

  async #settleFailure(job: JobRecord, timeoutMs: number | undefined, signal: AbortSignal, error: unknown): Promise<void> {
    const { store } = this.#options;
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    if (reason instanceof JobAbort) {
      if (reason.reason === "timeout") {
        await store.finish(job.id, {
          state: "error",
          error: { code: "timeout", message: `the job exceeded its limit of ${timeoutMs} ms` },
        });
      } else if (reason.reason === "shutdown") {
        await store.requeue(job.id, maxAttemptsOf(this.#options.tools, job.tool));
      }
      // cancelled: the store already says so; nothing to write.
      return;
    }
    await store.finish(job.id, { state: "error", error: this.#toJobError(job, error) });
  }

  #toJobError(job: JobRecord, error: unknown): JobError {
    if (error instanceof SmcpError) {
      return error.details === undefined
        ? { code: error.code, message: error.message }
        : { code: error.code, message: error.message, details: error.details };
    }
    this.#options.onError?.(error, { tool: job.tool, jobId: job.id });
    return { code: "tool_failed", message: "the tool failed" };
  }
}
