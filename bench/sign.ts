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
  /** The ts_ms of every body: when they will be sent, within the server's freshness window. Default now. */
  tsMs?: number;
  /** Add to the file instead of replacing it. */
  append?: boolean;
  /** The client key that signs. Default HMAC. */
  alg?: BenchAlg;
}

/**
 * Writes `count` unique signed `batch_sum` envelopes (own nonce and
 * request_id each), one per line, signing on one worker thread per CPU.
 * Resolves with the seconds it took. Call it while no load runs: it uses every core.
 */
export async function writeSignedBodies(options: SignOptions): Promise<number> {
  const t0 = performance.now();
  const out = createWriteStream(options.file, { flags: options.append ? "a" : "w" });
  const threads = Math.max(1, Math.min(availableParallelism(), Math.ceil(options.count / 10_000)));
  const share = Math.ceil(options.count / threads);
  const tsMs = options.tsMs ?? Date.now();
  let writes = Promise.resolve();
  await Promise.all(
    Array.from({ length: threads }, async (_, i) => {
      const count = Math.max(0, Math.min(share, options.count - i * share));
      const worker = tsWorker(new URL("./sign-worker.ts", import.meta.url), { count, tsMs, alg: options.alg ?? "hmac" });
      // Writes are chained, so each batch lands whole and the file is complete when the chain ends.
      worker.on("message", (text: string) => {
        writes = writes.then(() => (out.write(text) ? undefined : once(out, "drain").then(() => undefined)));
      });
      const [code] = (await once(worker, "exit")) as [number];
      if (code !== 0) throw new Error(`signing worker exited with code ${code}`);
    }),
  );
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

  /** Makes sure at least `count` unsent bodies are in the file; resolves with how many it added. */
  async ensure(count: number): Promise<number> {
    const missing = count - (this.#written - this.#sent);
    if (missing <= 0) return 0;
    if (this.#kind !== "mcp") {
      const alg = this.#kind === "signed-ed25519" ? "ed25519" : "hmac";
      await writeSignedBodies({ file: this.file, count: missing, append: this.#written > 0, alg });
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
