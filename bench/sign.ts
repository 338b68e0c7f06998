import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { BATCH_NUMBERS, type BenchAlg } from "./fixtures.js";
import { tsWorker } from "./worker.js";

/** Options for {@link writeSignedBodies}. */
export interface SignOptions {
  file: string;
  count: number;
  /** The first body's ts_ms: when it will be sent, within the server's freshness window. Default now. */
  tsMs?: number;
  /**
   * Stamps the bodies as a client sending this many a second from `tsMs` on
   * would (body i: `tsMs + floor(i * 1000 / perSecond)`), so a store sees the
   * rising expiries of real traffic. Default: every body at `tsMs`.
   */
  perSecond?: number;
  /** Add to the file instead of replacing it. */
  append?: boolean;
  /** The client key that signs. Default HMAC. */
  alg?: BenchAlg;
}

/** Bodies a signing worker signs and posts at once: chunk k holds bodies k * CHUNK onwards. */
const SIGN_CHUNK = 10_000;

/**
 * Writes `count` unique signed `batch_sum` envelopes (own nonce and
 * request_id each), one per line, signing on one worker thread per CPU.
 * Resolves with the seconds it took. Call it while no load runs: it uses every core.
 */
export async function writeSignedBodies(options: SignOptions): Promise<number> {
  const t0 = performance.now();
  const out = createWriteStream(options.file, { flags: options.append ? "a" : "w" });
  const chunks = Math.ceil(options.count / SIGN_CHUNK);
  const threads = Math.max(1, Math.min(availableParallelism(), chunks));
  const tsMs = options.tsMs ?? Date.now();
  // Chunks are dealt round-robin to the threads and written in order (the file's order is the order wrk sends),
  // so with `perSecond` the ts_ms rise along the file.
  const done = new Map<number, string>();
  let next = 0;
  let writes = Promise.resolve();
  const flush = () => {
    for (let text = done.get(next); text !== undefined; text = done.get(next)) {
      done.delete(next++);
      const line = text;
      writes = writes.then(() => (out.write(line) ? undefined : once(out, "drain").then(() => undefined)));
    }
  };
  const workers = Array.from({ length: threads }, (_, thread) => {
    const work = { count: options.count, thread, threads, chunk: SIGN_CHUNK, tsMs, perSecond: options.perSecond ?? 0 };
    const worker = tsWorker(new URL("./sign-worker.ts", import.meta.url), { ...work, alg: options.alg ?? "hmac" });
    worker.on("message", ({ chunk, text }: { chunk: number; text: string }) => {
      done.set(chunk, text);
      flush();
    });
    return worker;
  });
  try {
    await Promise.all(
      workers.map(async (worker) => {
        const [code] = (await once(worker, "exit")) as [number];
        if (code !== 0) throw new Error(`signing worker exited with code ${code}`);
      }),
    );
  } catch (error) {
    // One failed: the others stop too, and nothing more is written.
    for (const worker of workers) void worker.terminate();
    out.destroy();
    throw error;
  }
  if (next !== chunks) throw new Error(`signing wrote ${next} of ${chunks} chunks`);
  await writes;
  out.end();
  await once(out, "finish");
  return (performance.now() - t0) / 1000;
}

/** An MCP `tools/call` JSON-RPC body for the same `batch_sum` (no signing: nothing to replay). */
export function mcpBody(id: number): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "batch_sum", arguments: { numbers: BATCH_NUMBERS } },
  });
}

/** What a peer is sent: envelopes signed by the bench client's HMAC or Ed25519 key, or MCP JSON-RPC `tools/call`. */
export type BodyKind = "signed" | "signed-ed25519" | "mcp";

/**
 * A file of bodies consumed by successive wrk runs: each run starts after
 * the lines earlier runs sent, and the file is topped up (fresh ts_ms) when
 * fewer than a run needs are left. Nothing is signed twice or sent twice.
 */
export class BodyPool {
  readonly file: string;
  readonly #kind: BodyKind;
  #written = 0;
  #sent = 0;

  constructor(file: string, kind: BodyKind) {
    this.file = file;
    this.#kind = kind;
  }

  /** Lines already sent: the next run's `skip`. */
  get sent(): number {
    return this.#sent;
  }

  /** Skips every body written but not sent (e.g. signed too long ago to be fresh). */
  discard(): void {
    this.#sent = this.#written;
  }

  /**
   * Makes sure at least `count` unsent bodies are in the file; resolves with how many it added.
   * `perSecond`: the added bodies' ts_ms rise at that rate (see {@link SignOptions.perSecond}).
   */
  async ensure(count: number, perSecond?: number): Promise<number> {
    const missing = count - (this.#written - this.#sent);
    if (missing <= 0) return 0;
    if (this.#kind !== "mcp") {
      const alg = this.#kind === "signed-ed25519" ? "ed25519" : "hmac";
      await writeSignedBodies({
        file: this.file,
        count: missing,
        append: this.#written > 0,
        alg,
        ...(perSecond === undefined ? {} : { perSecond }),
      });
    } else {
      const out = createWriteStream(this.file, { flags: this.#written > 0 ? "a" : "w" });
      for (let i = 0; i < missing; i++) if (!out.write(`${mcpBody(this.#written + i)}\n`)) await once(out, "drain");
      out.end();
      await once(out, "finish");
    }
    this.#written += missing;
    return missing;
  }

  /** Records that a run sent `count` more bodies. */
  consumed(count: number): void {
    this.#sent += count;
  }
}
