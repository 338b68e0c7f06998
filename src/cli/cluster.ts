import cluster, { type Worker } from "node:cluster";
import type { CliIO } from "./io.js";
import { stopSignal } from "./io.js";

// How long a worker may take to stop gracefully (its HTTP grace is 10 s, held polls 5 s) before it is killed.
const WORKER_STOP_GRACE_MS = 20_000;

/** True in a process `smcp serve --workers N` forked. */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env.SMCP_CLUSTER_WORKER === "1";
}

/** Tells the primary this worker listens (instead of printing the ready line itself). */
export function reportListening(origin: string): void {
  process.send?.({ smcp: "listening", origin });
}

/**
 * `smcp serve --workers N`: N copies of this same command as node:cluster
 * workers sharing one port (the primary hands out connections). Prints one
 * `listening on` line once every worker listens; SIGTERM/SIGINT stop them
 * all gracefully; a worker that dies is replaced. Only for stores that
 * share state across processes (SQLite, Redis).
 */
export async function runCluster(count: number, io: CliIO): Promise<number> {
  const stop = stopSignal();
  let stopping = false;
  let failed: number | undefined;
  const ready = new Set<number>();
  let announced = false;
  let readyResolve: (origin: string) => void = () => {};
  const allReady = new Promise<string>((resolve) => {
    readyResolve = resolve;
  });
  const fork = (): Worker => {
    const worker = cluster.fork({ SMCP_CLUSTER_WORKER: "1" });
    worker.on("message", (message: { smcp?: string; origin?: string }) => {
      if (message?.smcp !== "listening" || typeof message.origin !== "string") return;
      ready.add(worker.id);
      if (!announced && ready.size >= count) {
        announced = true;
        readyResolve(message.origin);
      }
    });
    worker.on("exit", (code, signal) => {
      ready.delete(worker.id);
      if (stopping) return;
      if (!announced) {
        // A worker that cannot start (bad flag, store unreachable) ends the whole server.
        failed = code ?? 1;
        readyResolve("");
        return;
      }
      io.err(`smcp: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
      setTimeout(() => {
        if (!stopping) fork();
      }, 1000).unref();
    });
    return worker;
  };
  for (let i = 0; i < count; i++) fork();
  const origin = await Promise.race([allReady, stop.then(() => "")]);
  if (origin !== "") io.out(`listening on ${origin}`);
  if (failed === undefined && origin !== "") await stop;
  stopping = true;
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  // A worker gets a graceful stop, but not forever: one still running after the grace is killed,
  // so a stuck shutdown can't keep the server (and its supervisor) waiting.
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          const force = setTimeout(() => {
            io.err(`smcp: worker ${worker.process.pid} did not stop within ${WORKER_STOP_GRACE_MS} ms; killing it`);
            worker.process.kill("SIGKILL");
          }, WORKER_STOP_GRACE_MS);
          worker.once("exit", () => {
            clearTimeout(force);
            resolve();
          });
          worker.process.kill("SIGTERM");
        }),
    ),
  );
  return failed ?? 0;
}
