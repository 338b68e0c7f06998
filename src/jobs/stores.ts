import type { RateLimiterFactory } from "./limiter.js";
import type { NonceStore } from "./nonces.js";
import type { JobQueueFactory } from "./queue.js";
import type { JobStore } from "./store.js";

/** The stores behind a server or worker, opened from a store URL. */
export interface OpenedStores {
  jobStore: JobStore;
  nonceStore: NonceStore;
  /** How jobs are dispatched when not in this process alone (SQLite, Redis). */
  jobQueue?: JobQueueFactory;
  /** Where per-client rate counters live when they must be shared by replicas (Redis). Default: process memory. */
  rateLimiter?: RateLimiterFactory;
}

/** Options for `openStores`. */
export interface OpenStoresOptions {
  /** Retention of finished jobs, ms. Default 24 h. */
  retentionMs?: number;
  /** Sees connection errors (once per outage). */
  onError?: (error: unknown) => void;
}
