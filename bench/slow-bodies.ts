// Slow bodies (slowloris) against `smcp serve --store memory` at its default HTTP limits: one
// source (127.0.0.2) holds N connections, each with a complete head declaring Content-Length
// 1000 and only part of the body, reopening any the server closes; meanwhile a well-behaved
// client (127.0.0.1, 8 keep-alive connections, each request a fresh signed batch_sum) sends
// requests for a few seconds. For each N: that client's answers, errors (anything but a 200
// signed ok), p50/p99 latency, and how many of the N were open when the measurement ended.
//
// Usable on an older build for "before" figures (--smcp ../old/dist/cli/main.js): it uses no
// new flag. Loopback only; bounded: per N, the hold is set up (at most --setup-s) and measured
// for --seconds, then the server is stopped.
//
//   node --import tsx bench/slow-bodies.ts [--smcp PATH] [--holds 0,1000,4000,5000,8000] [--seconds 4]
//        [--concurrency 8] [--setup-s 10] [--extra="--flag value ..."]
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { BATCH_NUMBERS, benchEnvelope } from "./fixtures.js";
import { pinSelf } from "./peer.js";
import { DEFAULT_SMCP, quietFlags, startSmcp } from "./smcp.js";

const { values } = parseArgs({
  options: {
    smcp: { type: "string", default: DEFAULT_SMCP },
    holds: { type: "string", default: "0,1000,4000,5000,8000" },
    seconds: { type: "string", default: "4" },
    concurrency: { type: "string", default: "8" },
    "setup-s": { type: "string", default: "10" },
    extra: { type: "string", default: "" },
  },
});
const HOLDS = values.holds.split(",").map(Number);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const SETUP_MS = Number(values["setup-s"]) * 1000;
const ATTACKER = "127.0.0.2";

/**
 * Keeps `target` connections open from {@link ATTACKER}, each a complete head and 10 of its
 * 1000 declared body bytes; a connection the server closes is reopened until {@link stop}.
 */
class Holder {
  readonly #port: number;
  readonly #target: number;
  readonly #sockets = new Set<Socket>();
  #stopped = false;
  #opening = 0;
  /** Heads sent; connections closed before the end (refused, cut off, or failing to connect). */
  sent = 0;
  closedByServer = 0;

  constructor(port: number, target: number) {
    this.#port = port;
    this.#target = target;
  }

  /** Connections open now (head and partial body sent). */
  get open(): number {
    return this.#sockets.size;
  }

  /** Opens connections until `target` are open, at most 256 opening at once. */
  fill(): void {
    while (!this.#stopped && this.#sockets.size + this.#opening < this.#target && this.#opening < 256) this.#openOne();
  }

  #openOne(): void {
    this.#opening++;
    const socket = connect({ port: this.#port, host: "127.0.0.1", localAddress: ATTACKER });
    let counted = false;
    socket.on("error", () => undefined);
    socket.once("connect", () => {
      this.#opening--;
      counted = true;
      this.#sockets.add(socket);
      socket.write(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"v":"mcp/`,
      );
      this.sent++;
      this.fill();
    });
    socket.on("data", () => undefined); // an answer (503, 429, 400) is read and dropped; the close follows
    socket.once("close", () => {
      if (!counted) this.#opening--;
      this.#sockets.delete(socket);
      if (!this.#stopped) {
        this.closedByServer++;
        // Reopened on the next turn, not synchronously: a server refusing at once must not spin this loop.
        setImmediate(() => this.fill());
      }
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const socket of this.#sockets) socket.destroy();
  }
}

interface Point {
  held: number;
  openAtEnd: number;
  closedByServer: number;
  answers: number;
  errors: number;
  p50ms: number;
  p99ms: number;
}

/** The well-behaved client: CONCURRENCY keep-alive connections, fresh signed requests, for SECONDS. */
async function victim(url: string): Promise<Omit<Point, "held" | "openAtEnd" | "closedByServer">> {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: CONCURRENCY, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const response = await pool.request({
          path: target.pathname,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: benchEnvelope("batch_sum", { numbers: BATCH_NUMBERS }),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        });
        const text = await response.body.text();
        if (response.statusCode !== 200 || !text.includes('"ok":true')) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await pool.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { answers: latencies.length, errors, p50ms: at(0.5), p99ms: at(0.99) };
}

async function measure(held: number): Promise<Point> {
  const extra = values.extra.split(" ").filter((s) => s !== "");
  const peer = await startSmcp({ store: "memory", bin: values.smcp, extra: [...quietFlags(values.smcp), ...extra] });
  const holder = new Holder(Number(new URL(peer.url).port), held);
  try {
    holder.fill();
    // Set up: every held connection open once (a server refusing some keeps this loop reopening them).
    const setupEnd = performance.now() + SETUP_MS;
    while (holder.sent < held && performance.now() < setupEnd) await new Promise((resolve) => setImmediate(resolve));
    const result = await victim(`${peer.url}/mcp`);
    return { held, openAtEnd: holder.open, closedByServer: holder.closedByServer, ...result };
  } finally {
    holder.stop();
    await peer.stop();
  }
}

pinSelf(1);
console.log(`smcp: ${values.smcp}; ${SECONDS} s per point, ${CONCURRENCY} client connections`);
console.log("| held (attempted) | open at end | closed (refused, cut, failed) | answers | errors | p50 ms | p99 ms |");
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (const held of HOLDS) {
  const p = await measure(held);
  console.log(
    `| ${p.held} | ${p.openAtEnd} | ${p.closedByServer} | ${p.answers} | ${p.errors} | ${p.p50ms.toFixed(2)} | ${p.p99ms.toFixed(2)} |`,
  );
}
