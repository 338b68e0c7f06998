/**
 * The worker side of a {@link Sandbox}: a target module calls
 * {@link serveSandbox} with its handlers; each handler gets the call's
 * argument and `mark(i)`, which records which item of a batch it is on (read
 * by the parent when the call hangs).
 */
import { parentPort, workerData } from "node:worker_threads";

/** A handler of one sandbox method. */
export type SandboxHandler = (arg: never, mark: (index: number) => void) => unknown;

/** Serves `handlers` to the parent thread; call once, at the top level of a target module. */
export function serveSandbox(handlers: Record<string, SandboxHandler>): void {
  const port = parentPort;
  if (!port) throw new Error("serveSandbox runs inside a sandbox worker");
  const progress = new Int32Array((workerData as { progress: SharedArrayBuffer }).progress);
  const mark = (index: number) => Atomics.store(progress, 0, index);
  const table = new Map(Object.entries(handlers));
  port.on("message", async (message: { id: number; method: string; arg: never }) => {
    try {
      const handler = table.get(message.method);
      if (!handler) throw new Error(`no sandbox method '${message.method}'`);
      const value = await handler(message.arg, mark);
      port.postMessage({ id: message.id, ok: true, value });
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      port.postMessage({ id: message.id, ok: false, error: { name: e.name, message: `${e.message}\n${e.stack ?? ""}` } });
    }
  });
  port.postMessage({ ready: true });
}
