import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
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

/** Starts a command and resolves once it printed its first stdout line (its "ready" line). */
export async function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Child> {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
  let stderr = "";
  child.stderr?.on("data", (c) => {
    stderr += c;
  });
  const exited = once(child, "exit");
  const first = once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), "line");
  const result = await Promise.race([first, exited.then(() => undefined)]);
  if (result === undefined) throw new Error(`${command} ${args.join(" ")} exited before it was ready:\n${stderr}`);
  return {
    process: child,
    line: String((result as [string])[0]),
    stderr: () => stderr,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
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
