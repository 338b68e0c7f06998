/** A job's transition. */
export interface JobEvent {
  jobId: string;
  tool: string;
  clientId: string;
  event: "accepted" | "started" | "done" | "error" | "cancelled" | "requeued";
  /** For `error`: the job's code. */
  code?: string;
  /** For `started`: how long it waited in the queue, ms. */
  queueWaitMs?: number;
  /** For the end events: how long the run took, ms. */
  runMs?: number;
}
