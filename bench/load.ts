import { performance } from "node:perf_hooks";
import { Pool } from "undici";

/** One load run's figures. */
export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
}

/** Options for {@link runLoad}. */
export interface LoadOptions {
  url: string;
  /** The request bodies, one per request, sent in order (pre-signed and unique for smcp). */
  bodies: readonly string[];
  headers?: Record<string, string>;
  /** Requests in flight at once, over as many keep-alive connections. */
  concurrency: number;
  /** A response counts as an error unless this accepts it. */
  check: (status: number, body: string) => boolean;
}

/**
 * Sends every body once at a fixed concurrency over keep-alive HTTP and
 * measures throughput and latency (per request, from `performance.now()`).
 * Stops by itself when the bodies run out.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const pool = new Pool(url.origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const headers = { "content-type": "application/json", ...options.headers };
  const latencies = new Float64Array(options.bodies.length);
  let next = 0;
  let errors = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= options.bodies.length) return;
      const started = performance.now();
      try {
        const response = await pool.request({ path: url.pathname, method: "POST", headers, body: options.bodies[i] as string });
        const text = await response.body.text();
        if (!options.check(response.statusCode, text)) errors++;
      } catch {
        errors++;
      }
      latencies[i] = performance.now() - started;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort();
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: options.bodies.length,
    errors,
    seconds,
    rps: options.bodies.length / seconds,
    p50ms: at(0.5),
    p99ms: at(0.99),
    maxms: latencies[latencies.length - 1] ?? 0,
  };
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
