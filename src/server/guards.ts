/** An error that escaped tool code: a rejection nobody awaited, or an exception thrown from a callback. */
export interface StrayError {
  kind: "unhandled_rejection" | "uncaught_exception";
  error: unknown;
  /** Tools with runs in this process when it surfaced: where it most likely came from. */
  toolsRunning: string[];
}

/** Options for {@link installProcessGuards}. */
export interface ProcessGuardOptions {
  /** Logs and counts it (`createObservability().stray`). Must not throw. */
  onStray: (event: StrayError) => void;
  /** Tools running now (`server.runs.runningTools()`), to name the likely culprit. */
  runningTools?: () => string[];
}

/**
 * Keeps one tool's stray error from taking the whole server down. Node's
 * default for an unhandled rejection or an uncaught exception is to exit,
 * which would drop every other client's requests and jobs because of one
 * handler that forgot an `await`. `smcp serve` and `smcp worker` install
 * this; an application embedding smcp decides for its own process (install
 * it, or its own `process.on("unhandledRejection")`). Attribution is by the
 * tools running at the moment, not by async context: AsyncLocalStorage on
 * Node 20 slows every promise in the process (measured 2.5x per await).
 * Returns a function that removes the handlers.
 */
export function installProcessGuards(options: ProcessGuardOptions): () => void {
  const report = (kind: StrayError["kind"]) => (error: unknown) => {
    try {
      options.onStray({ kind, error, toolsRunning: options.runningTools?.() ?? [] });
    } catch {
      // The guard itself must never be what throws.
    }
  };
  const onRejection = report("unhandled_rejection");
  const onException = report("uncaught_exception");
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return () => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  };
}
