import type { CliIO } from "../src/cli/io.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "./helpers.js";

/** A CliIO that records lines, for running the CLI in process. */
export interface CapturedIO extends CliIO {
  readonly stdout: string[];
  readonly stderr: string[];
  outText(): string;
  errText(): string;
}

/** Records what a command prints; `env` is all the environment it sees. */
export function captureIO(env: NodeJS.ProcessEnv = {}): CapturedIO {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (line) => stdout.push(line),
    err: (line) => stderr.push(line),
    status: (line) => stderr.push(line),
    env,
    tty: false,
    outText: () => stdout.join("\n"),
    errText: () => stderr.join("\n"),
  };
}

/** The connection flags for the test keys, against `url`. */
export function connectionFlags(url: string): string[] {
  return [
    "--url",
    url,
    "--client-id",
    CLIENT_ID,
    "--client-secret",
    CLIENT_SECRET,
    "--server-id",
    SERVER_ID,
    "--server-secret",
    SERVER_SECRET,
  ];
}
