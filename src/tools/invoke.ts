import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";
import { raceAbort } from "../util/abort.js";
import { StatusReply, type Tool } from "./define.js";
import type { ToolRuns } from "./runs.js";

/** The abort reason of a run stopped by its tool's `timeoutMs`. */
export class ToolTimeout extends Error {
  override readonly name = "ToolTimeout";
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

/** What a caller is told when a tool ran past its `timeoutMs`, for sync calls and jobs alike (`tool_failed`). */
export function timedOut(timeout: ToolTimeout): string {
  return `the tool timed out after ${timeout.timeoutMs} ms`;
}

/** How one run of a tool ended. */
export type Invocation =
  /** The handler's output, checked against the tool's output schema. */
  | { kind: "output"; output: JsonObject }
  /** A protocol tool's answer with a status other than `ok` (`poll_job`). */
  | { kind: "reply"; reply: StatusReply }
  /** The handler's own {@link SmcpError}, or `tool_failed` / `bad_output`. */
  | { kind: "failed"; error: SmcpError }
  /**
   * Stopped before it ended: `reason` is a {@link ToolTimeout}, or the
   * caller's signal's reason. `settled` is there when the handler ignored
   * its signal and is still running: it resolves when the handler really
   * ends (a job queue holds the run's slot until then).
   */
  | { kind: "aborted"; reason: unknown; settled?: Promise<void> };

/** Options for {@link invokeTool}. */
export interface InvokeOptions<C> {
  /** Stops the run (cancel, shutdown); its reason comes back in an `aborted` outcome. */
  signal: AbortSignal;
  /** Builds the handler's context around the signal the handler must honour. */
  context: (signal: AbortSignal) => C;
  /** Sees what the wire hides: a handler's own exception, an output schema failure. */
  report: (error: unknown) => void;
  /** Counts and caps the process's runs, overdue ones among them. */
  runs?: ToolRuns | undefined;
}

/**
 * The one path that runs a tool, for sync calls and jobs alike: the handler
 * gets an AbortSignal that fires on the caller's signal or the tool's
 * timeout; a handler that ignores it still loses the race (its late result
 * is dropped); the output is checked against the output schema; errors are
 * mapped (an {@link SmcpError} keeps its code, anything else is reported and
 * becomes `tool_failed`). `args` must already be checked.
 */
export async function invokeTool<C>(tool: Tool, args: unknown, options: InvokeOptions<C>): Promise<Invocation> {
  const { timeoutMs, name } = tool;
  const { runs } = options;
  if (runs && !runs.admits(name)) {
    return {
      kind: "failed",
      error: new SmcpError(
        "unavailable",
        "too many earlier runs of this tool are still going past their time limit; retry later",
      ),
    };
  }
  // Without a timeout the caller's signal is used as it is: no timer, no extra signal on the hot path.
  const timer = timeoutMs === undefined ? undefined : new AbortController();
  const signal = timer ? AbortSignal.any([options.signal, timer.signal]) : options.signal;
  if (signal.aborted) return { kind: "aborted", reason: signal.reason };
  const timeout = timer && setTimeout(() => timer.abort(new ToolTimeout(timeoutMs as number)), timeoutMs);
  // Whether the handler itself has ended, and who to tell when it does after its caller was answered.
  let ended = false;
  let onEnd: (() => void) | undefined;
  const end = () => {
    ended = true;
    runs?.ended(name);
    onEnd?.();
  };
  const aborted = (): Invocation => {
    if (ended) return { kind: "aborted", reason: signal.reason };
    const settled = new Promise<void>((resolve) => {
      onEnd = resolve;
    });
    return { kind: "aborted", reason: signal.reason, settled: runs ? runs.overdue(name, settled) : settled };
  };
  runs?.started(name);
  let output: unknown;
  try {
    let running: unknown;
    try {
      running = (tool.handler as (args: unknown, ctx: C) => unknown)(args, options.context(signal));
    } finally {
      if (!isThenable(running)) end();
    }
    output = isThenable(running) ? await raceAbort(running, signal, end) : running;
  } catch (error) {
    if (signal.aborted) return aborted();
    if (error instanceof SmcpError) return { kind: "failed", error };
    options.report(error);
    return { kind: "failed", error: new SmcpError("tool_failed", "the tool failed") };
  } finally {
    clearTimeout(timeout);
  }
  if (signal.aborted) return aborted();
  if (output instanceof StatusReply) return { kind: "reply", reply: output };
  const checked = tool.output.safeParse(output);
  if (!checked.success || !isJsonObject(checked.data)) {
    options.report(checked.success ? new TypeError("the tool's output is not a JSON object") : checked.error);
    return { kind: "failed", error: new SmcpError("bad_output", "the tool's output does not match its output schema") };
  }
  return { kind: "output", output: checked.data };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
