// What else ran in this guest during a run: the stall probe (bench/stalls.ts) sees the host stopping CPU 0,
// but as a real-time thread it runs ahead of every other thread of the guest, so it cannot see the guest's
// own processes (a database's background workers, a message broker's schedulers, kernel threads such as
// DAMON's kdamond) taking CPU 0 from the server, and the server's own major page faults (a code page the
// kernel dropped from the page cache, read back from disk while the server waits) are not stalls to it.
// Both are read here from /proc, before and after each run.
import { readdirSync, readFileSync } from "node:fs";
import { procStats } from "./peer.js";

// USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
const CLOCK_TICKS = 100;

/** Scheduler waits: how long threads were runnable but not running (ns, /proc/PID/task/TID/schedstat). */
export interface Waits {
  /** The measured server's main threads (of each process of its tree): its event loops. */
  server: number;
  /** The server's other threads (V8's garbage-collector helpers, libuv's thread pool), summed. */
  helpers: number;
  /** The generator's threads, summed (read while it runs: see {@link watchWaits}). */
  wrk: number;
  /** The kernel threads that run the network's deferred receive work for each CPU when it piles up. */
  softirq0: number;
  softirq1: number;
}

/** A reading of the guest: CPU `cpu`'s busy ticks and every process's CPU ticks and major faults. */
export interface GuestReading {
  atMs: number;
  waits: Waits;
  /** The CPU's ticks in every state but idle and iowait (/proc/stat). */
  cpuBusy: number;
  /** pid → command name, CPU ticks (user + system, its own), major faults (its own). */
  procs: Map<number, { comm: string; ticks: number; majflt: number }>;
}

/** The ns a process's threads waited to run (the second field of each thread's schedstat): its main thread's and the rest's. */
function waitedNs(pid: number): { main: number; rest: number } {
  const ns = { main: 0, rest: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const waited = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[1]);
        if (Number(tid) === pid) ns.main += waited;
        else ns.rest += waited;
      } catch {
        // The thread ended while being read.
      }
    }
  } catch {
    // The process ended while being read.
  }
  return ns;
}

/**
 * Watches the scheduler waits of the first process named `comm` below `parent` (the generator, which exits
 * at the end of its run, so it is read while it runs: every `everyMs`). `stop()` gives the ns its threads
 * waited between the first and the last reading, and the ms those readings spanned.
 */
export function watchWaits(parent: number, comm: string, everyMs = 200): { stop(): { ns: number; spanMs: number } | undefined } {
  let pid: number | undefined;
  let first: { ns: number; at: number } | undefined;
  let last: { ns: number; at: number } | undefined;
  const read = () => {
    if (pid === undefined) {
      for (const [p, st] of procStats()) if (st.comm === comm && st.ppid === parent) pid = p;
      if (pid === undefined) return;
    }
    const w = waitedNs(pid);
    if (w.main + w.rest === 0 && first) return; // Gone: keep the last reading.
    last = { ns: w.main + w.rest, at: performance.now() };
    first ??= last;
  };
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return first && last && last.at > first.at ? { ns: last.ns - first.ns, spanMs: last.at - first.at } : undefined;
    },
  };
}

/**
 * Reads CPU `cpu`'s busy ticks, every process's CPU ticks and major faults, and the scheduler waits of the
 * server's processes (`server`), the generator and the per-CPU softirq threads.
 */
export function readGuest(cpu: number, server: ReadonlySet<number> = new Set()): GuestReading {
  const atMs = performance.now();
  let cpuBusy = 0;
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    if (!line.startsWith(`cpu${cpu} `)) continue;
    // user nice system idle iowait irq softirq (steal ...): idle and iowait are not busy, and steal is the host's.
    const ticks = line.trim().split(/\s+/).slice(1, 8).map(Number);
    cpuBusy = ticks.reduce((sum, t, i) => (i === 3 || i === 4 ? sum : sum + t), 0);
  }
  const procs = new Map<number, { comm: string; ticks: number; majflt: number }>();
  const waits: Waits = { server: 0, helpers: 0, wrk: 0, softirq0: 0, softirq1: 0 };
  for (const [pid, st] of procStats()) {
    procs.set(pid, { comm: st.comm, ticks: st.utime + st.stime, majflt: st.majflt });
    if (server.has(pid)) {
      const w = waitedNs(pid);
      waits.server += w.main;
      waits.helpers += w.rest;
    } else if (st.comm === "ksoftirqd/0") waits.softirq0 += waitedNs(pid).main;
    else if (st.comm === "ksoftirqd/1") waits.softirq1 += waitedNs(pid).main;
  }
  return { atMs, waits, cpuBusy, procs };
}

/** What the guest did between two readings, besides the measured server. */
export interface GuestWindow {
  /** ms per s CPU `cpu` was busy but not with the server's process tree (other processes, kernel threads, interrupts, the stall probe). */
  othersMsPerS: number;
  /** Major page faults of the server's process tree. */
  serverMajflt: number;
  /** The other processes that used the most CPU (any CPU), ms per s each, most first (at most 3). */
  top: { comm: string; msPerS: number }[];
  /** ms per s each waited to run (runnable, not running): a thread waiting holds up what it would do. */
  waitMsPerS: Waits;
}

/** The bench's own processes, left out of {@link GuestWindow.top} (each runs, or waits, on the bench's behalf). */
const OWN = new Set(["wrk", "tcpdump", "stalls", "taskset"]);

/**
 * The window between `before` and `after`: `server` are the measured server's pids (its tree); `seconds` the span
 * the per-second figures are of; `wrk` the generator's waits read while it ran ({@link watchWaits}). Neither this
 * process nor the generator, tcpdump or the stall probe is in `top`; any other (a peer's store, a database) may be.
 */
export function guestWindow(
  before: GuestReading,
  after: GuestReading,
  options: { server: ReadonlySet<number>; seconds: number; wrk: { ns: number; spanMs: number } | undefined },
): GuestWindow {
  const { server, seconds, wrk } = options;
  const msPerS = (ticks: number) => ((ticks / CLOCK_TICKS) * 1000) / seconds;
  let serverTicks = 0;
  let serverMajflt = 0;
  const others: { comm: string; msPerS: number }[] = [];
  for (const [pid, a] of after.procs) {
    const b = before.procs.get(pid);
    const ticks = a.ticks - (b?.ticks ?? 0);
    if (server.has(pid)) {
      serverTicks += ticks;
      serverMajflt += a.majflt - (b?.majflt ?? 0);
    } else if (pid !== process.pid && !OWN.has(a.comm) && ticks > 0 && b) others.push({ comm: a.comm, msPerS: msPerS(ticks) });
  }
  others.sort((x, y) => y.msPerS - x.msPerS);
  return {
    othersMsPerS: Math.max(0, msPerS(after.cpuBusy - before.cpuBusy - serverTicks)),
    serverMajflt,
    top: others.slice(0, 3),
    waitMsPerS: {
      server: (after.waits.server - before.waits.server) / 1e6 / seconds,
      helpers: (after.waits.helpers - before.waits.helpers) / 1e6 / seconds,
      wrk: wrk ? wrk.ns / 1e6 / (wrk.spanMs / 1000) : Number.NaN,
      softirq0: (after.waits.softirq0 - before.waits.softirq0) / 1e6 / seconds,
      softirq1: (after.waits.softirq1 - before.waits.softirq1) / 1e6 / seconds,
    },
  };
}
