// Latency on the wire, beside wrk's own figures (bench/http.ts --wire on). tcpdump records a run's packets on
// the loopback interface, and each request's latency is read off them: from the departure of the request's packet
// (the kernel stamps a loopback packet when it is sent) to the departure of its answer's. A request's wait in the
// generator, and the answer's wait before the generator reads it, are left out; the gap from an answer to its
// connection's next request bounds the second (the generator sends the next one only after reading the answer),
// and is reported too. Needs tcpdump (Debian's package) and the right to capture.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { pinned } from "./peer.js";

const run = promisify(execFile);

/** A run's latency on the wire. */
export interface WireWindow {
  /** Requests answered in the capture. */
  requests: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  /** From an answer's departure (its first packet) to its connection's next request's: the generator's turn-around (99th percentile, longest). */
  turnP99ms: number;
  turnMaxms: number;
  /** Packets tcpdump said the kernel dropped (0 for a complete capture). */
  dropped: number;
}

/** A capture running: `stop()` ends it and reads the latencies. */
export interface WireCapture {
  stop(): Promise<WireWindow | undefined>;
}

/**
 * Starts capturing the packets that carry data to or from `port` on loopback, resolving once tcpdump listens
 * (10 s at most). tcpdump itself is pinned to `cpu`, the generator's; the kernel's copy of each packet to it is
 * made on the sending CPU, the server's for the answers: a small cost to every peer alike, not nothing.
 */
export async function startWireCapture(port: number, cpu: number): Promise<WireCapture> {
  const dir = mkdtempSync(join(tmpdir(), "smcp-bench-wire-"));
  const file = join(dir, "run.pcap");
  // Data packets only (TCP payload length != 0): the requests and the answers, not the ACKs; IPv4 or IPv6
  // (without extension headers, as loopback TCP has none).
  const filter =
    `tcp port ${port} and ((ip and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) != 0)` +
    ` or (ip6 and (ip6[4:2] - ((tcp[12]&0xf0)>>2)) != 0))`;
  // As root, tcpdump would drop to its own user after opening the interface and could not write in this directory.
  const user = process.getuid?.() === 0 ? ["-Z", "root"] : [];
  const [command, argv] = pinned(["tcpdump", "-i", "lo", "-n", "-s", "96", "-B", "65536", ...user, "-w", file, filter], cpu);
  const child: ChildProcess = spawn(command, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  // 'close': the process has exited and its stderr (the dropped-packet count) has been read to the end.
  const closed = once(child, "close");
  void closed.catch(() => undefined); // An 'error' (tcpdump missing) is reported by `listening` below.
  let timer: NodeJS.Timeout | undefined;
  const listening = new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.includes("listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`tcpdump exited (${code}): ${stderr.trim()}`)));
    child.once("error", reject);
    timer = setTimeout(() => reject(new Error("tcpdump did not start listening within 10 s")), 10_000);
  });
  try {
    await listening;
  } catch (error) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    async stop() {
      try {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
        await closed;
        const dropped = Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? 0);
        const { stdout } = await run("tcpdump", ["-r", file, "-tt", "-n", "-q"], { maxBuffer: 1 << 30 });
        return wireLatencies(stdout, port, dropped);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Latencies from `tcpdump -tt -n -q` lines ("<epoch s> IP 127.0.0.1.<a> > 127.0.0.1.<b>: tcp <length>", or IP6
 * with `::1.<a>`): per
 * client port, each request packet is paired with the next answer packet (one request in flight per
 * connection, as wrk without pipelining sends them). Exported for its test.
 */
export function wireLatencies(text: string, port: number, dropped = 0): WireWindow | undefined {
  const suffix = `.${port}`;
  const pending = new Map<string, number>();
  const lastAnswer = new Map<string, number>();
  const latencies: number[] = [];
  const turns: number[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f.length < 7 || f[5] !== "tcp" || Number(f[6]) === 0) continue;
    const at = Number(f[0]) * 1000;
    // A line whose time is not a number is not a packet (found by the generative test: a NaN latency sorted
    // anywhere and broke the percentiles).
    if (!Number.isFinite(at)) continue;
    const from = f[2] as string;
    const to = (f[4] as string).replace(/:$/, "");
    if (to.endsWith(suffix)) {
      // A request from `from` (a second packet of the same request keeps the first's time).
      if (!pending.has(from)) pending.set(from, at);
      const answered = lastAnswer.get(from);
      if (answered !== undefined) {
        turns.push(at - answered);
        lastAnswer.delete(from);
      }
    } else if (from.endsWith(suffix)) {
      const sent = pending.get(to);
      if (sent === undefined) continue; // A later packet of the same answer, or an answer to a request before the capture.
      latencies.push(at - sent);
      pending.delete(to);
      lastAnswer.set(to, at);
    }
  }
  if (latencies.length === 0) return undefined;
  latencies.sort((a, b) => a - b);
  turns.sort((a, b) => a - b);
  // wrk's rule: the first value whose rank reaches round(p * n + 0.5), i.e. index floor(p * n) (0-based).
  const at = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
  return {
    requests: latencies.length,
    p50ms: at(latencies, 0.5),
    p99ms: at(latencies, 0.99),
    maxms: latencies[latencies.length - 1] as number,
    turnP99ms: at(turns, 0.99),
    turnMaxms: turns[turns.length - 1] ?? Number.NaN,
    dropped,
  };
}
