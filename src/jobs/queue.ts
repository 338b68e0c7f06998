import type { ToolRegistry } from "../tools/registry.js";
import type { JobRecord, JobStore } from "./store.js";

/** What a queue hands jobs to (the engine's runner): the queue never needs more of it than this. */
export interface JobExecutor {
  /** This worker's id, as job records show it. */
  readonly workerId: string;
  /** The lease end a job claimed now gets. */
  leaseFromNow(): number;
  /** Runs the job if it is still queued; false when this process is shutting down (the job stays queued). */
  run(jobId: string): Promise<boolean>;
  /** Runs a job this worker already claimed in the store. */
  runClaimed(job: JobRecord): Promise<void>;
  /** Aborts the job if it runs here. */
  abort(jobId: string, reason?: "cancelled" | "shutdown"): boolean;
  /** Aborts every job running here; starts nothing more. */
  abortAll(): void;
}

/** Hands stored jobs to whatever executes them: this process, or workers elsewhere. */
export interface JobQueue {
  /** Schedules a stored, `queued` job. Throws when the queue is unreachable. */
  enqueue(job: JobRecord): Promise<void>;
  /** Asks whichever worker holds the job to abort it (after the store says `cancelled`). */
  abort(jobId: string): Promise<void>;
  /** Stops taking work; jobs running here are aborted and go back to `queued`. */
  close(): Promise<void>;
}

/** What a job queue factory is given by the job engine. */
export interface JobQueueDeps {
  runner: JobExecutor;
  store: JobStore;
  tools: ToolRegistry;
  /** Jobs to run at once in this process. */
  concurrency: number;
  /** False for an API process that only enqueues (workers elsewhere run the jobs). */
  execute: boolean;
  onError: (error: unknown) => void;
}

/** Makes the queue a store's jobs go through (see `OpenedStores.jobQueue`). */
export type JobQueueFactory = (deps: JobQueueDeps) => JobQueue;
