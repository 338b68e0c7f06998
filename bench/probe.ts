import { once } from "node:events";
import type { Worker } from "node:worker_threads";
import { tsWorker } from "./worker.js";

/** What the prober saw since its last reset. */
export interface ProbeReading {
  /** The slowest /healthz answer, or the one still waiting: an outside view of the worst event-loop block. */
  worstMs: number;
  /** ms since the last answer: large when the server no longer answers at all. */
  silentMs: number;
}

/**
 * Probes a server's `GET /healthz` about every millisecond from a worker
 * thread, over one keep-alive connection, and reports the slowest answer
 * between {@link reset} and {@link read}.
 */
export class HealthProber {
  readonly #worker: Worker = tsWorker(new URL("./probe-worker.ts", import.meta.url), undefined);

  /** Probes the server on `port` from now on (after a restart). */
  target(port: number): void {
    this.#worker.postMessage({ cmd: "target", port });
  }

  reset(): void {
    this.#worker.postMessage({ cmd: "reset" });
  }

  async read(): Promise<ProbeReading> {
    const answer = once(this.#worker, "message");
    this.#worker.postMessage({ cmd: "read" });
    return (await answer)[0] as ProbeReading;
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}
