import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pinned } from "./peer.js";

const run = promisify(execFile);

/** Where Debian installs wrk; the C load generator the HTTP benches prefer. */
export const WRK = "/usr/bin/wrk";
const SCRIPT = fileURLToPath(new URL("./wrk/bodies.lua", import.meta.url));

/** True when wrk is installed. */
export function hasWrk(): boolean {
  return existsSync(WRK);
}

/** One wrk run's figures (latencies exact, from wrk's histogram, in ms). */
export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  /**
   * Mean latency. At saturation, C closed-loop connections keep C requests in flight, so mean x rps is about C
   * (Little's law): a slower server's mean, and with it its tail, is longer by its rate ratio alone.
   */
  meanms: number;
  /** Answers with a status of 400 or more: wrk's own count (smcp answers nothing in 3xx). */
  non2xx: number;
  /** Socket errors: connect, read, write, and requests past wrk's --timeout. */
  socket: { connect: number; read: number; write: number; timeout: number };
  /** Bodies sent (each once). */
  used: number;
  /**
   * The requests' own latencies: wrk's figures above (p50, p99, mean) include samples its correction for
   * coordinated omission adds (bench/wrk/bodies.lua undoes it exactly); undefined when it could not.
   */
  measured: { p50ms: number; p90ms: number; p99ms: number; p999ms: number; meanms: number } | undefined;
}

/** Options for {@link runWrk}. */
export interface WrkOptions {
  url: string;
  /** A file of request bodies, one per line, each sent once. */
  bodiesFile: string;
  /** Lines of the file to pass over (sent by an earlier run). Default 0. */
  skip?: number;
  /**
   * Read and format one body per request instead of all before the clock
   * starts: a run starts at once however large the file (back-to-back soak
   * segments), at a few microseconds of wrk's own core per request.
   */
  stream?: boolean;
  seconds: number;
  /** Keep-alive connections, all on one wrk thread. */
  connections: number;
  /** The CPU wrk is pinned to (when taskset exists). */
  cpu: number;
  headers?: Record<string, string>;
  /** A request slower than this counts as a timeout, not a latency. Default 10 s. */
  timeoutS?: number;
  /**
   * Each connection waits 0 to 2x this many milliseconds (whole, random) between an answer and its next request:
   * about `connections * 1000 / paceMs` requests a second offered whatever the server's speed. Unset: none.
   */
  paceMs?: number;
}

/**
 * Runs wrk (one thread) for a fixed time, every request a body of its own
 * from `bodiesFile`. Throws if the bodies ran out (resending one would be a
 * replay): give a larger file.
 */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const headers = { "Content-Type": "application/json", ...options.headers };
  const args = ["-t1", `-c${options.connections}`, `-d${options.seconds}s`, `--timeout`, `${options.timeoutS ?? 10}s`];
  args.push("-s", SCRIPT);
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  args.push(options.url, "--", options.bodiesFile, String(options.skip ?? 0));
  if (options.stream) args.push("stream");
  if (options.paceMs !== undefined) args.push(`pace=${options.paceMs.toFixed(3)}`);
  args.push(`connections=${options.connections}`);
  const [command, argv] = pinned([WRK, ...args], options.cpu);
  const { stdout } = await run(command, argv, { maxBuffer: 1 << 20 });
  const line = /^WRK_JSON (.*)$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line) as Record<string, number | null>;
  const n = (k: string) => r[k] ?? 0;
  if (n("exhausted")) {
    throw new Error(`wrk used all ${n("used")} bodies before ${options.seconds} s were up; sign more (--headroom)`);
  }
  const seconds = n("duration_us") / 1e6;
  return {
    requests: n("requests"),
    seconds,
    rps: n("requests") / seconds,
    p50ms: n("p50_us") / 1000,
    p99ms: n("p99_us") / 1000,
    maxms: n("max_us") / 1000,
    meanms: n("mean_us") / 1000,
    non2xx: n("status"),
    socket: { connect: n("connect"), read: n("read"), write: n("write"), timeout: n("timeout") },
    used: n("used"),
    measured:
      typeof r.measured_count === "number"
        ? {
            p50ms: n("measured_p50_us") / 1000,
            p90ms: n("measured_p90_us") / 1000,
            p99ms: n("measured_p99_us") / 1000,
            p999ms: n("measured_p999_us") / 1000,
            meanms: n("measured_mean_us") / 1000,
          }
        : undefined,
  };
}

/** Socket errors of a run as one short string (`0` when none). */
export function socketErrors(r: WrkResult): string {
  const parts = Object.entries(r.socket).filter(([, n]) => n > 0);
  return parts.length === 0 ? "0" : parts.map(([k, n]) => `${k} ${n}`).join(", ");
}
