// Host stalls on the server's CPU, measured beside every run: bench/stalls/stalls.c (a SCHED_FIFO thread
// that sleeps a millisecond at a time) pinned to that CPU reports each wake-up later than 0.5 ms. On a
// virtual machine the hypervisor sometimes runs another guest on our CPU: the server is then stopped with
// all its in-flight requests, whatever its code does. Such a stall lands on the requests in flight, 64 of
// them at saturation, so it reaches a larger share of a slower server's requests, and a p99 lands on it
// once the stalled requests are 1% of a run's: the figure each run reports so that tails are read with it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { pinned } from "./peer.js";

const SOURCE = fileURLToPath(new URL("./stalls/stalls.c", import.meta.url));

/** The stalls seen between two instants. */
export interface StallWindow {
  /** ms the CPU was stalled (late wake-ups of 0.5 ms or more, the part inside the window), per second of it. */
  msPerS: number;
  /** Stalls of 1 ms or more. */
  over1ms: number;
  /** The longest, ms (0: none). */
  worstMs: number;
}

/** A running probe. */
export interface StallProbe {
  /** Whether it runs SCHED_FIFO; without it its own scheduling delays behind the server count as stalls too. */
  readonly fifo: boolean;
  /** Now on the probe's clock (CLOCK_MONOTONIC, ms), to mark a window's ends. */
  now(): number;
  /** What it saw from `fromMs` to `toMs`; undefined once it has exited (nothing seen is not no stalls). */
  window(fromMs: number, toMs: number): StallWindow | undefined;
  stop(): void;
}

/**
 * The probe compiled by gcc into a directory of this run's own (never a shared path: it runs as a real-time
 * thread, as root here). Throws with gcc's message when it cannot be built.
 */
function build(): { bin: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "smcp-bench-stalls-"));
  const bin = join(dir, "stalls");
  try {
    execFileSync("gcc", ["-O2", "-Wall", "-o", bin, SOURCE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`the stall probe did not build: ${stderr || (error as Error).message}`);
  }
  return { bin, dir };
}

/** Starts the probe pinned to `cpu` (throws when it cannot be built or started; the caller goes on without it). */
export async function startStallProbe(cpu: number): Promise<StallProbe> {
  const { bin, dir } = build();
  const [command, argv] = pinned([bin, "500"], cpu);
  // stdin stays open while this process lives: the probe ends when it closes.
  const child: ChildProcess = spawn(command, argv, { stdio: ["pipe", "pipe", "ignore"] });
  // Its binary is removed as soon as it runs or fails; a probe that exits makes later windows unknown.
  let alive = true;
  child.once("exit", () => {
    alive = false;
  });
  const ends: number[] = [];
  const lengths: number[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const fifo = await new Promise<boolean>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", () => reject(new Error("the stall probe exited")));
    lines.once("line", (line) => resolve(line === "fifo 1"));
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
  lines.on("line", (line) => {
    const [end, late] = line.split(" ").map(Number);
    if (Number.isFinite(end) && Number.isFinite(late)) {
      ends.push(end as number);
      lengths.push(late as number);
    }
  });
  return {
    fifo,
    // process.hrtime is CLOCK_MONOTONIC on Linux, the probe's clock.
    now: () => Number(process.hrtime.bigint()) / 1e6,
    window(fromMs, toMs) {
      if (!alive) return undefined;
      let lost = 0;
      let over1ms = 0;
      let worstMs = 0;
      for (let i = 0; i < ends.length; i++) {
        const end = ends[i] as number;
        const start = end - (lengths[i] as number);
        const inside = Math.min(end, toMs) - Math.max(start, fromMs);
        if (inside <= 0) continue;
        lost += inside;
        if ((lengths[i] as number) >= 1) over1ms++;
        worstMs = Math.max(worstMs, lengths[i] as number);
      }
      return { msPerS: toMs > fromMs ? lost / ((toMs - fromMs) / 1000) : 0, over1ms, worstMs };
    },
    stop() {
      child.stdin?.end();
      child.kill("SIGTERM");
    },
  };
}
