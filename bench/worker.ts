import { Worker } from "node:worker_threads";

/**
 * Starts a TypeScript module as a worker thread. Workers do not inherit
 * tsx's loader on Node 20, so the thread registers it before loading the module.
 */
export function tsWorker(module: URL, workerData: unknown): Worker {
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
