import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import {
  closeSync,
  createWriteStream,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** A peer server process started by a benchmark. */
export interface RunningPeer {
  url: string;
  process: ChildProcess;
  /** Stops it: SIGTERM, then SIGKILL if it has not exited after `graceMs` (a hung server ignores SIGTERM). */
  stop(graceMs?: number): Promise<void>;
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

/** `[command, args]` that run `argv` pinned to `cpu` when taskset exists (taskset execs, so the pid is the program's). */
export function pinned(argv: readonly string[], cpu: number | string): [string, string[]] {
  return taskset() ? ["taskset", ["-c", String(cpu), ...argv]] : [argv[0] as string, argv.slice(1)];
}

/**
 * Pins every thread of this process to `cpus` (e.g. "1" or "0,1"), so the
 * load generator and the server do not share a core.
 */
export function pinSelf(cpus: number | string): void {
  if (taskset()) execFileSync("taskset", ["-a", "-cp", String(cpus), String(process.pid)], { stdio: "ignore" });
}

/**
 * Pins every thread of another process (the store's own server, e.g. Redis) to `cpus`. Returns what gives
 * it back the CPUs its main thread had (per-thread settings are not kept), or undefined when nothing was
 * pinned (no taskset, or the pin was refused: a warning says so and the run goes on unpinned).
 */
export function pinOther(pid: number, cpus: string): (() => void) | undefined {
  if (!taskset()) return undefined;
  let before: string | undefined;
  const restore = () => {
    if (before) execFileSync("taskset", ["-a", "-cp", before, String(pid)], { stdio: "ignore" });
  };
  try {
    const shown = execFileSync("taskset", ["-cp", String(pid)], { encoding: "utf8" });
    before = /affinity list: (.+)$/m.exec(shown)?.[1]?.trim();
    execFileSync("taskset", ["-a", "-cp", cpus, String(pid)], { stdio: "ignore" });
    return restore;
  } catch (error) {
    // Refused part way (another user's process, a thread gone): put back what was changed, then go on.
    try {
      restore();
    } catch {}
    console.error(`could not pin pid ${pid} to CPU ${cpus} (${(error as Error).message}); it runs unpinned`);
    return undefined;
  }
}

/** Runs `work` with this process allowed on every CPU (e.g. to sign in parallel while no load runs), then pins it to `cpu` again. */
export async function onAllCpus<T>(cpu: number, work: () => Promise<T>): Promise<T> {
  pinSelf(`0-${availableParallelism() - 1}`);
  try {
    return await work();
  } finally {
    pinSelf(cpu);
  }
}

/** What a process tree has used so far: CPU (user, system) and I/O calls (/proc/PID/stat and /proc/PID/io). */
export interface TreeUsage {
  userS: number;
  systemS: number;
  /** read-family and write-family system calls (sockets and files alike), and the bytes they moved. */
  syscr: number;
  syscw: number;
  rchar: number;
  wchar: number;
}

/**
 * CPU and I/O used so far by a process and every process below it (e.g. `serve --workers N`'s node:cluster
 * workers). A child that exited and was waited for is counted in its parent: its CPU in the parent's
 * cutime/cstime (added here), its I/O in the parent's /proc/PID/io.
 */
export function treeUsageOf(pid: number): TreeUsage {
  const usage: TreeUsage = { userS: 0, systemS: 0, syscr: 0, syscw: 0, rchar: 0, wchar: 0 };
  for (const [p, st] of processTree(pid)) {
    usage.userS += st.user / CLOCK_TICKS;
    usage.systemS += st.system / CLOCK_TICKS;
    try {
      for (const line of readFileSync(`/proc/${p}/io`, "utf8").split("\n")) {
        const [key, value] = line.split(": ");
        if (key === "syscr" || key === "syscw" || key === "rchar" || key === "wchar") usage[key] += Number(value);
      }
    } catch {
      // Exited, or not ours to read: its I/O is not counted.
    }
  }
  return usage;
}

/**
 * Stops (SIGSTOP) or resumes (SIGCONT) a process and every process below it. A stopped server does
 * nothing at all, its garbage collector and timers included, so a peer waiting for its turn takes none of
 * the measured peer's CPU (V8 collects an idle heap's garbage some seconds after the load stops).
 */
export function signalTree(pid: number, signal: "SIGSTOP" | "SIGCONT"): void {
  for (const p of processTree(pid).keys()) {
    try {
      process.kill(p, signal);
    } catch {
      // It exited meanwhile.
    }
  }
}

/** One process's line of /proc/PID/stat, the fields the benches read (CPU in clock ticks). */
export interface ProcStat {
  comm: string;
  ppid: number;
  /** Its own user and system ticks (utime, stime). */
  utime: number;
  stime: number;
  /** Its waited-for children's (cutime, cstime). */
  cutime: number;
  cstime: number;
  /** Its major page faults. */
  majflt: number;
}

/** Every process's /proc/PID/stat, by pid (one that exits while being read is left out). */
export function procStats(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis, f[0]
      // being stat(5) field 3 (state).
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      stats.set(Number(name), {
        comm: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")),
        ppid: Number(f[1]),
        majflt: Number(f[9]),
        utime: Number(f[11]),
        stime: Number(f[12]),
        cutime: Number(f[13]),
        cstime: Number(f[14]),
      });
    } catch {
      // It exited while being read.
    }
  }
  return stats;
}

/** A process and every process below it, by pid, with its CPU ticks (its own and its waited-for children's). */
function processTree(pid: number): Map<number, { user: number; system: number }> {
  const stats = procStats();
  const tree = new Map<number, { user: number; system: number }>();
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    const st = stats.get(p);
    if (st) tree.set(p, { user: st.utime + st.cutime, system: st.stime + st.cstime });
    for (const [child, c] of stats) if (c.ppid === p) todo.push(child);
  }
  return tree;
}

/** The preload that writes what a peer saw inside (with BENCH_INSIDE_DIR set). */
const INSIDE_MODULE = fileURLToPath(new URL("./peers/inside.mjs", import.meta.url));

/** The server's own time per request, in bench/peers/inside.mjs's buckets: < 1, 1-2, 2-5, 5-10, 10-20, 20-50, 50-100, >= 100 ms. */
export const INSIDE_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100] as const;

/** What a process tree's processes saw inside during a window (bench/peers/inside.mjs). */
export interface Inside {
  /** The longest event-loop delay, ms. */
  loopMaxMs: number;
  /** 100 ms windows with a loop delay of 10 ms or more. */
  over10: number;
  /** Requests per bucket of {@link INSIDE_BOUNDS_MS}. */
  counts: number[];
}

/** What a process tree saw inside from `fromMs` to `toMs` (epoch ms), or undefined when nothing was written. */
export function insideOf(pids: Iterable<number>, fromMs: number, toMs: number): Inside | undefined {
  const dir = process.env.BENCH_INSIDE_DIR;
  if (!dir) return undefined;
  const inside: Inside = { loopMaxMs: 0, over10: 0, counts: new Array(INSIDE_BOUNDS_MS.length + 1).fill(0) };
  let seen = false;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(join(dir, `${pid}.txt`), "utf8");
    } catch {
      continue; // Not a node process, or it has not written yet.
    }
    for (const line of text.split("\n")) {
      const [from = Number.NaN, to = Number.NaN, delay = 0, ...counts] = line.split(" ").map(Number);
      // Only the lines whose span lies wholly inside the window.
      if (!(from >= fromMs && to <= toMs)) continue;
      seen = true;
      inside.loopMaxMs = Math.max(inside.loopMaxMs, delay);
      if (delay >= 10) inside.over10++;
      counts.forEach((n, i) => {
        inside.counts[i] = (inside.counts[i] ?? 0) + n;
      });
    }
  }
  return seen ? inside : undefined;
}

/** The pids of a process and every process below it. */
export function treePids(pid: number): Set<number> {
  return new Set(processTree(pid).keys());
}

/** CPU seconds (user + system) used so far by a process and every process below it. */
export function cpuSecondsOf(pid: number): number {
  const u = treeUsageOf(pid);
  return u.userS + u.systemS;
}

// USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
const CLOCK_TICKS = 100;

/** Resident set size of a process in bytes (VmRSS, and the peak VmHWM), from /proc/PID/status. */
export function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/**
 * Starts `node ARGS...` pinned to `cpu` and resolves with its URL once it prints `listening on URL`.
 * `stderr: "null"` sends its stderr to /dev/null instead of a file (what its log writes cost without the file).
 */
export async function startPeer(
  args: string[],
  cpu: number | string,
  env?: NodeJS.ProcessEnv,
  options: { stderr?: "file" | "null" } = {},
): Promise<RunningPeer> {
  // bench/http.ts --inside on: every peer reports its loop's delays and its own time per request (bench/peers/inside.mjs).
  const preload = process.env.BENCH_INSIDE_DIR ? ["--import", INSIDE_MODULE] : [];
  const [command, argv] = pinned([process.execPath, ...preload, ...args], cpu);
  // Its stderr (where smcp logs, a line per request at info) goes to a file, as a production server's logs would
  // go to a file or a collector: through a pipe, this process read megabytes a second of it on the generator's CPU,
  // and wrk's own delays count as the server's latency. In memory (/dev/shm) where there is one, so that the
  // kernel's writeback of a disk file does not run beside the measured server either: the server's own cost of
  // its logs (the write calls included) is what is measured. Removed when the peer stops.
  const logDir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "smcp-bench-peer-"));
  const logFd = openSync(options.stderr === "null" ? "/dev/null" : join(logDir, "stderr.log"), "a");
  let child: ChildProcess;
  try {
    child = spawn(command, argv, { stdio: ["ignore", "pipe", logFd], ...(env ? { env: { ...process.env, ...env } } : {}) });
  } finally {
    closeSync(logFd);
  }
  /** The log's last 64 KiB (for the message of a peer that dies). */
  const stderrTail = () => {
    try {
      const fd = openSync(join(logDir, "stderr.log"), "r");
      try {
        const size = fstatSync(fd).size;
        const buffer = Buffer.alloc(Math.min(size, 65536));
        readSync(fd, buffer, 0, buffer.length, size - buffer.length);
        return buffer.toString("utf8");
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      return `(its stderr could not be read: ${(error as Error).message})`;
    }
  };
  child.once("exit", () => rmSync(logDir, { recursive: true, force: true }));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = new Promise<string>((resolve, reject) => {
    lines.on("line", (line: string) => {
      const match = /^listening on (\S+)/.exec(line);
      if (match) resolve(match[1] as string);
    });
    child.prependOnceListener("exit", () => reject(new Error(`peer exited: ${stderrTail()}`)));
  });
  const url = (await ready).replace(/\/$/, "");
  // From here on its output is drained unread: a server logging a line per request (info level) would have this
  // process split megabytes a second into lines, on the generator's CPU. BENCH_PEER_STDOUT=PREFIX keeps it instead,
  // in PREFIX.PID, piped without parsing (what V8's --trace-gc prints, from a peer key's +--trace-gc).
  lines.close();
  const keep = process.env.BENCH_PEER_STDOUT;
  if (keep) child.stdout?.pipe(createWriteStream(`${keep}.${child.pid}`));
  else child.stdout?.resume();
  return {
    url,
    process: child,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
