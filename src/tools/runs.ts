/** Default cap on one tool's runs still going after their timeout or abort, per process. */
export const DEFAULT_MAX_OVERDUE_RUNS = 32;

/** A change in a tool's overdue runs: one began outliving its timeout or abort, or one finally settled. */
export interface OverdueEvent {
  tool: string;
  event: "overdue" | "settled";
  /** This tool's overdue runs after the change. */
  overdue: number;
}

/** Options for {@link ToolRuns}. */
export interface ToolRunsOptions {
  /** Overdue runs one tool may have before its new runs are refused (`unavailable`). Default {@link DEFAULT_MAX_OVERDUE_RUNS}. */
  maxOverdue?: number | undefined;
  /** Sees each change (metrics, logs). Must not throw. */
  onOverdue?: ((event: OverdueEvent) => void) | undefined;
}

/**
 * What tool code is running in this process. A handler that ignores its
 * abort signal can't be stopped (JavaScript has no way to kill a promise):
 * its caller is answered at the timeout, but the run is still using CPU,
 * memory and connections. Such runs are counted here per tool, so they are
 * visible in `/metrics`, capped (a tool with too many gets `unavailable` for
 * new runs until some settle, instead of piling up without bound), and job
 * queues keep the run's concurrency slot until it really settles.
 */
export class ToolRuns {
  readonly #running = new Map<string, number>();
  readonly #overdue = new Map<string, number>();
  readonly #max: number;
  readonly #onOverdue: ((event: OverdueEvent) => void) | undefined;

  constructor(options: ToolRunsOptions = {}) {
    this.#max = options.maxOverdue ?? DEFAULT_MAX_OVERDUE_RUNS;
    this.#onOverdue = options.onOverdue;
  }

  /** False when the tool already has its cap of overdue runs: don't start another. */
  admits(tool: string): boolean {
    return (this.#overdue.get(tool) ?? 0) < this.#max;
  }

  /** A run began; call {@link ended} when its handler settles. */
  started(tool: string): void {
    this.#running.set(tool, (this.#running.get(tool) ?? 0) + 1);
  }

  /** A run's handler settled. */
  ended(tool: string): void {
    // A tool's count stays at 0 rather than being deleted: a sync call starts and ends each request, and a
    // long-lived Map whose key comes and goes reallocates its table in V8's old generation every few calls, old
    // garbage that only a major GC frees (BENCHMARKS, round 3 session 14). Keys are registered tools' names, so
    // the Map stays as small as the registry.
    this.#running.set(tool, Math.max(0, (this.#running.get(tool) ?? 1) - 1));
  }

  /**
   * The run's caller was answered (timeout, cancel, shutdown) while its
   * handler goes on: counted as overdue until `settled` resolves. Returns a
   * promise that resolves then (never rejects).
   */
  overdue(tool: string, settled: Promise<unknown>): Promise<void> {
    const count = (this.#overdue.get(tool) ?? 0) + 1;
    this.#overdue.set(tool, count);
    this.#emit({ tool, event: "overdue", overdue: count });
    const done = () => {
      const left = (this.#overdue.get(tool) ?? 1) - 1;
      if (left > 0) this.#overdue.set(tool, left);
      else this.#overdue.delete(tool);
      this.#emit({ tool, event: "settled", overdue: left });
    };
    return settled.then(done, done);
  }

  /** Overdue runs now, per tool. */
  overdueByTool(): ReadonlyMap<string, number> {
    return this.#overdue;
  }

  /** The tools with runs in this process now (at most `max` names): who a stray error may have come from. */
  runningTools(max = 10): string[] {
    const names: string[] = [];
    for (const [name, n] of this.#running) {
      if (names.length === max) break;
      if (n > 0) names.push(name);
    }
    return names;
  }

  #emit(event: OverdueEvent): void {
    try {
      this.#onOverdue?.(event);
    } catch {
      // A failing metrics or log sink must not change what tools do.
    }
  }
}
