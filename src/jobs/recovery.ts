import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { ToolRegistry } from "../tools/registry.js";
import type { JobRecord, JobStore } from "./store.js";

// Recovery of jobs whose worker died: the same rules whichever queue dispatches them
// (the store-claiming queue of memory and SQLite, BullMQ on Redis).

/** Default attempts for a job whose worker died. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** Attempts allowed for a tool's jobs (the default for a tool this process does not have: another worker runs it). */
export function maxAttemptsOf(tools: ToolRegistry, name: string): number {
  const tool = tools.get(name);
  return tool?.kind === "job" ? (tool.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) : DEFAULT_MAX_ATTEMPTS;
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

/** A worker id that says where the worker runs: `HOST/PID/RANDOM`. */
export function newWorkerId(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

/** True when a worker id names a process of this host that no longer exists. */
function isDeadLocalWorker(workerId: string | null): boolean {
  const [host, pidText] = workerId?.split("/") ?? [];
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false; // alive (or its pid was reused: then the lease decides)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * At start: requeues running jobs whose worker was a process of this host
 * that is gone (killed, crashed), at once rather than after their lease.
 * Across hosts the lease stays the rule. Compare-and-set on the lease, so a
 * job another worker took meanwhile is left alone. Returns how many.
 */
export async function recoverOrphans(
  store: JobStore,
  tools: ToolRegistry,
  requeued: (job: JobRecord) => Promise<void>,
): Promise<number> {
  let count = 0;
  for (const job of await store.stale(Number.MAX_SAFE_INTEGER, 1000)) {
    if (job.leaseUntil === null || !isDeadLocalWorker(job.workerId)) continue;
    const state = await store.requeue(job.id, maxAttemptsOf(tools, job.tool), job.leaseUntil + 1);
    if (state !== "queued") continue;
    count++;
    await requeued({ ...job, state: "queued", workerId: null, leaseUntil: null });
  }
  return count;
}
