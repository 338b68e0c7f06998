import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

/** The built CLI (`npm test` builds first). */
export const BIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** A child process started by a test; always stopped by it. */
export interface Child {
  readonly process: ChildProcess;
  /** The first stdout line (e.g. `listening on http://...`). */
  readonly line: string;
  stderr(): string;
  /** Sends the signal and resolves with the exit code once it exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** How long a stopped child may take to exit before it is killed (a hung stop fails its test; it never hangs the file). */
const STOP_DEADLINE_MS = 20_000;

/** How long a child may take to print its ready line. */
const READY_DEADLINE_MS = 60_000;

/** Every child started here, and those of them that have not exited yet. */
const started = new Set<ChildProcess>();
const live = new Set<ChildProcess>();
/** Set once this file's tests have all ended: a child started after that is stopped at once. */
let ended = false;

/**
 * A test that fails early leaves its body running while the file goes on; if
 * that body starts a process after every `after` hook ran, nothing stops it,
 * and the child's pipes keep this file's process (and `npm test`) alive
 * until CI's deadline. So a top-level `after` hook of every file that starts
 * children stops the ones left, and refuses new ones from then on. It is
 * registered when this module loads, so it runs before the file's own
 * top-level `after` hooks, not after them: a file that stops its children
 * its own way finds them already stopped (no file depends on the order).
 */
after(async () => {
  ended = true;
  await Promise.all([...live].map((child) => stopChild(child, "SIGTERM")));
  // A grandchild (a shell's command) may still hold the pipes open: they must not keep this process alive.
  for (const child of started) {
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
});

/** Sends the signal; SIGKILL if the child has not exited by the deadline. Resolves with the exit code. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit");
  child.kill(signal);
  const deadline = setTimeout(() => child.kill("SIGKILL"), STOP_DEADLINE_MS);
  try {
    const [code] = (await exited) as [number | null];
    return code;
  } finally {
    clearTimeout(deadline);
  }
}

/** Starts a command and resolves once it printed its first stdout line (its "ready" line). */
export async function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Child> {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
  started.add(child);
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (ended) {
    child.kill("SIGKILL");
    throw new Error(`${command} ${args.join(" ")} was started after this file's tests ended (by a test that had failed)`);
  }
  let stderr = "";
  child.stderr?.on("data", (c) => {
    stderr += c;
  });
  const exited = once(child, "exit");
  const first = once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), "line");
  // A child that neither prints its ready line nor exits is killed at the deadline, failing its test.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), READY_DEADLINE_MS);
  });
  const result = await Promise.race([first, exited.then(() => undefined), late]).finally(() => clearTimeout(timer));
  if (result === "late") {
    await stopChild(child, "SIGKILL");
    throw new Error(`${command} ${args.join(" ")} printed no line within ${READY_DEADLINE_MS} ms:\n${stderr}`);
  }
  if (result === undefined) throw new Error(`${command} ${args.join(" ")} exited before it was ready:\n${stderr}`);
  return {
    process: child,
    line: String((result as [string])[0]),
    stderr: () => stderr,
    stop: (signal: NodeJS.Signals = "SIGTERM") => stopChild(child, signal),
  };
}

/** Starts the smcp CLI; resolves once it printed its ready line. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Child> {
  return start(process.execPath, [BIN, ...args], env);
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
