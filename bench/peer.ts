import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

/** A peer server process started by a benchmark. */
export interface RunningPeer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

let canPin: boolean | undefined;
function taskset(): boolean {
  if (canPin === undefined) {
    try {
      execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
      canPin = true;
    } catch {
      canPin = false;
    }
  }
  return canPin;
}

/** Pins this process to one CPU (when taskset exists), so the load generator and the server do not share a core. */
export function pinSelf(cpu: number): void {
  if (taskset()) execFileSync("taskset", ["-cp", String(cpu), String(process.pid)], { stdio: "ignore" });
}

/** Starts `node ARGS...` pinned to `cpu` and resolves with its URL once it prints `listening on URL`. */
export async function startPeer(args: string[], cpu: number): Promise<RunningPeer> {
  const [command, argv] = taskset() ? ["taskset", ["-c", String(cpu), process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command as string, argv as string[], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c) => {
    stderr += c;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = new Promise<string>((resolve, reject) => {
    lines.on("line", (line: string) => {
      const match = /^listening on (\S+)/.exec(line);
      if (match) resolve(match[1] as string);
    });
    child.once("exit", () => reject(new Error(`peer exited: ${stderr}`)));
  });
  const url = (await ready).replace(/\/$/, "");
  return {
    url,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
