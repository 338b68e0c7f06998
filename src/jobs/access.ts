import { SmcpError } from "../protocol/errors.js";
import type { JobAccess, JobView } from "../tools/define.js";
import type { JobQueue } from "./queue.js";
import type { JobRecord, JobStore } from "./store.js";

/** Runs a store operation; a failure that is not a protocol error becomes `unavailable` (fail closed). */
export async function guardStore<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof SmcpError) throw error;
    throw new SmcpError("unavailable", "a store the server needs is unavailable; retry later", { cause: error });
  }
}

/** A job as tools and clients see it (no args, worker or lease). */
function toView(job: JobRecord | undefined): JobView | undefined {
  if (!job) return undefined;
  const { id, tool, state, progress, result, error, attempts, createdAt, updatedAt } = job;
  return { id, tool, state, progress, result, error, attempts, createdAt, updatedAt };
}

/** One client's view of the jobs: another client's job reads as absent. */
export function jobAccessFor(store: JobStore, queue: JobQueue, clientId: string): JobAccess {
  const own = async (jobId: string): Promise<JobRecord | undefined> => {
    const job = await guardStore(() => store.get(jobId));
    return job && job.clientId === clientId ? job : undefined;
  };
  return {
    get: async (jobId) => toView(await own(jobId)),
    cancel: async (jobId) => {
      const job = await own(jobId);
      if (!job) return undefined;
      const after = await guardStore(() => store.cancel(jobId));
      if (job.state === "running" && after?.state === "cancelled") await guardStore(() => queue.abort(jobId));
      return toView(after);
    },
  };
}
