/** What a command may touch: its output streams and environment. */
export interface CliIO {
  /** A line on stdout (results, `listening on ...`). */
  out(line: string): void;
  /** A line on stderr (progress, notes, errors). */
  err(line: string): void;
  /** Rewrites the current stderr line (progress bar on a TTY). */
  status(line: string): void;
  readonly env: NodeJS.ProcessEnv;
  /** True when stderr is a terminal (progress bar instead of lines). */
  readonly tty: boolean;
}

/** The process's own streams. */
export function processIO(): CliIO {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    status: (line) => process.stderr.write(`\r\x1b[2K${line}`),
    env: process.env,
    tty: process.stderr.isTTY === true,
  };
}

/** JSON for people: indented, `bigint` as its digits. */
export function pretty(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** Why a long-running command stops. */
export type StopReason = "SIGTERM" | "SIGINT" | "launcher gone";

/**
 * Resolves with the first of SIGTERM, SIGINT or, when `npx`/`npm exec`
 * started this process, the launcher going away. npm exec does not forward
 * signals to its child, so `npx smcp serve & … kill %1` used to leave the
 * server running, reparented to init; watching the parent pid makes the
 * command live exactly as long as the process the user controls.
 */
export function stopSignal(env: NodeJS.ProcessEnv = process.env): Promise<StopReason> {
  return new Promise((resolve) => {
    let watch: NodeJS.Timeout | undefined;
    const done = (reason: StopReason) => {
      if (watch !== undefined) clearInterval(watch);
      resolve(reason);
    };
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
    if (env.npm_command === "exec") {
      const launcher = process.ppid;
      // getppid() is one cheap syscall; unref'd so it never keeps the process alive.
      watch = setInterval(() => {
        if (process.ppid !== launcher) done("launcher gone");
      }, 500);
      watch.unref();
    }
  });
}

/** How long a stopping `serve` or `worker` may take to close (HTTP grace 10 s, held polls 5 s) before it exits anyway. */
export const STOP_DEADLINE_MS = 20_000;

/**
 * Arms the stop's deadline: a graceful close can wait forever on a store
 * that went away first (a cluster or database stopped before its clients:
 * the client retries, the close never ends), and a supervisor's stop must
 * not hang. Past the deadline (`SMCP_STOP_DEADLINE_MS`, else
 * {@link STOP_DEADLINE_MS}) the process logs why and exits with code 1.
 * Unref'd: it never keeps a process that closed in time alive.
 */
export function armStopDeadline(options: { signal: StopReason; env: NodeJS.ProcessEnv; log: (message: string) => void }): void {
  const ms = stopDeadlineMs(options.env);
  setTimeout(() => {
    options.log(`not stopped ${ms / 1000} s after ${options.signal} (is the store reachable?): exiting now`);
    process.exit(1);
  }, ms).unref();
}

/** The stop deadline: `SMCP_STOP_DEADLINE_MS` when it is a positive integer, else {@link STOP_DEADLINE_MS}. */
export function stopDeadlineMs(env: NodeJS.ProcessEnv): number {
  const ms = Number(env.SMCP_STOP_DEADLINE_MS);
  return Number.isInteger(ms) && ms > 0 ? ms : STOP_DEADLINE_MS;
}
