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

/** Resolves with the name of the first SIGTERM or SIGINT this process gets. */
export function stopSignal(): Promise<"SIGTERM" | "SIGINT"> {
  return new Promise((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
}
