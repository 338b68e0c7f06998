import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError, ToolError, wireText } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";
import { followAbort, raceAbort } from "../util/abort.js";
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
  /**
   * The handler's own {@link SmcpError}, or `tool_failed` (its failure, or
   * its timeout: the same answer for calls and jobs) / `bad_output`.
   * `settled`: as for `aborted`, when a timed-out handler still runs.
   */
  | { kind: "failed"; error: SmcpError; settled?: Promise<void> }
  /**
   * Stopped before it ended by the caller's signal (cancel, shutdown):
   * `reason` is its reason. `settled` is there when the handler ignored
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
  /** Answer unexpected errors with "the tool failed" instead of their own message ({@link ToolError}s still speak). */
  hideErrors?: boolean | undefined;
}

/** Longest tool error message an answer carries (SPEC §5). */
export const MAX_TOOL_MESSAGE = 512;

/**
 * What the caller is told of a handler's own failure (SPEC §5): a
 * {@link ToolError}'s message and details; another error's message unless
 * hidden. Bounded, control characters escaped, well-formed.
 */
export function toolFailure(error: unknown, hide = false): SmcpError {
  if (error instanceof ToolError) {
    return new SmcpError("tool_failed", wireText(error.message || "the tool failed", MAX_TOOL_MESSAGE), {
      details: error.details,
      cause: error,
    });
  }
  const message = !hide && error instanceof Error && error.message ? error.message : "the tool failed";
  return new SmcpError("tool_failed", wireText(message, MAX_TOOL_MESSAGE), { cause: error });
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
  // Without a timeout the caller's signal is used as it is: no timer, no extra signal on the hot path. With one, a
  // controller of the run's own follows the caller's signal (often the server's shutdown signal, which lives as
  // long as the process) until the run is over: not AbortSignal.any, which leaks an entry on that signal per call.
  const own = timeoutMs === undefined ? undefined : followAbort(options.signal);
  const signal = own ? own.controller.signal : options.signal;
  if (signal.aborted) {
    own?.unlink();
    return { kind: "aborted", reason: signal.reason };
  }
  const timeout = own && setTimeout(() => own.controller.abort(new ToolTimeout(timeoutMs as number)), timeoutMs);
  // Whether the handler itself has ended, and who to tell when it does after its caller was answered.
  let ended = false;
  let onEnd: (() => void) | undefined;
  const end = () => {
    ended = true;
    runs?.ended(name);
    onEnd?.();
  };
  const aborted = (): Invocation => {
    const reason: unknown = signal.reason;
    let settled: Promise<void> | undefined;
    if (!ended) {
      const end = new Promise<void>((resolve) => {
        onEnd = resolve;
      });
      settled = runs ? runs.overdue(name, end) : end;
    }
    const extra = settled ? { settled } : {};
    // The tool's own time limit is its failure; a cancel or shutdown is the caller's to answer.
    if (reason instanceof ToolTimeout) return { kind: "failed", error: new SmcpError("tool_failed", timedOut(reason)), ...extra };
    return { kind: "aborted", reason, ...extra };
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
    // A deliberate failure is an answer, not an incident: only unexpected errors are reported.
    if (!(error instanceof ToolError)) options.report(error);
    return { kind: "failed", error: toolFailure(error, options.hideErrors) };
  } finally {
    clearTimeout(timeout);
    own?.unlink();
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
