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
