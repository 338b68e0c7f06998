import { createRequire } from "node:module";
import type { BurstyRateLimiter, RateLimiterAbstract, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { RateLimiter, RateLimiterFactory } from "../jobs/limiter.js";
import { SmcpUsageError } from "../protocol/errors.js";

/** What one client may use. Each limit applies per client id, so one client cannot starve another. */
export interface ClientLimits {
  /** Sustained requests per second; 0 turns rate limiting off. Default 1,000. */
  rate?: number;
  /** Requests allowed in a burst on top of `rate`. Default twice `rate`. */
  burst?: number;
  /** Open (queued + running) jobs; 0: no limit. Default 1,000. */
  maxOpenJobs?: number;
  /** Bytes of the client's retained jobs (arguments and results); 0: no limit. Default 256 MiB. */
  maxStoredBytes?: number;
}

export type { RateLimiter, RateLimiterFactory } from "../jobs/limiter.js";

/** Options for {@link ClientLimiter}: defaults for every client, overrides per client id. */
export interface LimitsOptions extends ClientLimits {
  /** Per client id overrides (e.g. from the keyring file). */
  clients?: ReadonlyMap<string, ClientLimits> | Readonly<Record<string, ClientLimits>>;
  /** Where rate counters live. Default: this process's memory (`openStores` of a Redis URL gives a shared one). */
  rateLimiter?: RateLimiterFactory;
}

/** The defaults: generous enough that one person using one server never meets them. */
export const DEFAULT_CLIENT_LIMITS: Required<ClientLimits> = {
  rate: 1000,
  burst: 2000,
  maxOpenJobs: 1000,
  maxStoredBytes: 256 * 1024 * 1024,
};

/** A client's quotas as the job store takes them (undefined: no limit). */
export interface JobQuotas {
  maxOpenJobs: number | undefined;
  maxStoredBytes: number | undefined;
}

// rate-limiter-flexible is loaded when a server first limits a rate, not when a client imports smcp.
const requireLib = createRequire(import.meta.url);

/** A memory limiter (one process), from rate-limiter-flexible. */
export const memoryRateLimiter: RateLimiterFactory = (config) => {
  // Each lib file exports its class as module.exports.
  const Memory = requireLib("rate-limiter-flexible/lib/RateLimiterMemory.js") as typeof RateLimiterMemory;
  return new Memory(config);
};

/**
 * Per-client request rates (rate-limiter-flexible's BurstyRateLimiter: a
 * sustained rate, and a burst allowance that refills over `burst / rate`
 * seconds) and the job quotas the store enforces. Lookups by client id go
 * through a `Map`.
 */
export class ClientLimiter {
  readonly #defaults: Required<ClientLimits>;
  readonly #overrides: Map<string, Required<ClientLimits>>;
  readonly #factory: RateLimiterFactory;
  // One limiter per distinct (rate, burst): clients sharing limits share a limiter, each under its own key.
  readonly #limiters: Map<string, RateLimiter>;
  // Each client's limiter (null: no rate limit), found once: a request's charge then builds no key.
  readonly #byClient = new Map<string, RateLimiter | null>();

  /** With `base`, its defaults, counter store and limiters are shared; only the per-client overrides are new. */
  constructor(options: LimitsOptions = {}, base?: ClientLimiter) {
    this.#defaults = base ? base.#defaults : complete(options, DEFAULT_CLIENT_LIMITS, "the default limits");
    const entries = options.clients instanceof Map ? [...options.clients] : Object.entries(options.clients ?? {});
    this.#overrides = new Map(entries.map(([id, limits]) => [id, complete(limits, this.#defaults, `client '${id}'`)]));
    this.#factory = base ? base.#factory : (options.rateLimiter ?? memoryRateLimiter);
    this.#limiters = base ? base.#limiters : new Map();
  }

  /**
   * The same limiter with other per-client overrides (a registry reload):
   * counters carry over, since limiters are kept per (rate, burst) and keyed by client id.
   */
  withClients(clients: ReadonlyMap<string, ClientLimits>): ClientLimiter {
    return new ClientLimiter({ clients }, this);
  }

  /** The limits in force for a client. */
  limitsOf(clientId: string): Required<ClientLimits> {
    return this.#overrides.get(clientId) ?? this.#defaults;
  }

  /** The job quotas of a client. */
  quotas(clientId: string): JobQuotas {
    const { maxOpenJobs, maxStoredBytes } = this.limitsOf(clientId);
    return { maxOpenJobs: maxOpenJobs || undefined, maxStoredBytes: maxStoredBytes || undefined };
  }

  /**
   * Counts one request. Resolves to undefined when it may go on, or to how
   * long (ms) the client should wait. Rejects when the counter store is down.
   */
  async consume(clientId: string): Promise<number | undefined> {
    let limiter = this.#byClient.get(clientId);
    if (limiter === undefined) {
      const { rate, burst } = this.limitsOf(clientId);
      limiter = rate === 0 ? null : this.#limiter(rate, burst);
      // Only verified clients get here (keyring ids, so few); the bound is for safety.
      if (this.#byClient.size >= 10_000) this.#byClient.clear();
      this.#byClient.set(clientId, limiter);
    }
    if (limiter === null) return undefined;
    try {
      await limiter.consume(clientId);
      return undefined;
    } catch (rejection) {
      if (isRateLimiterRes(rejection)) return Math.max(1, Math.ceil(rejection.msBeforeNext));
      throw rejection;
    }
  }

  #limiter(rate: number, burst: number): RateLimiter {
    const key = `${rate}/${burst}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      const prefix = `smcp-rate-${rate}-${burst}`;
      const sustained = this.#factory({ ...wholeWindow(rate), keyPrefix: prefix });
      const extra = Math.floor(burst);
      if (extra < 1) {
        limiter = sustained; // no burst: the sustained rate alone
      } else {
        const Bursty = requireLib("rate-limiter-flexible/lib/BurstyRateLimiter.js") as typeof BurstyRateLimiter;
        limiter = new Bursty(
          sustained as RateLimiterAbstract,
          this.#factory({
            points: extra,
            duration: Math.max(1, Math.ceil(extra / rate)),
            keyPrefix: `${prefix}-burst`,
          }) as RateLimiterAbstract,
        );
      }
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }
}

/**
 * A rate (per second) as whole requests over a whole number of seconds, the
 * shortest window that is exact (rate-limiter-flexible counts whole points
 * per window): 100/s -> 100 per 1 s, 2.5/s -> 5 per 2 s, 30/m -> 1 per 2 s,
 * 7/m -> 7 per 60 s, 1/h -> 1 per 3600 s.
 */
function wholeWindow(rate: number): { points: number; duration: number } {
  for (let duration = 1; duration <= 86_400; duration++) {
    const points = rate * duration;
    if (points >= 1 && Math.abs(points - Math.round(points)) < 1e-9) return { points: Math.round(points), duration };
  }
  return { points: 1, duration: Math.ceil(1 / rate) };
}

function isRateLimiterRes(value: unknown): value is RateLimiterRes {
  return typeof value === "object" && value !== null && typeof (value as RateLimiterRes).msBeforeNext === "number";
}

function complete(limits: ClientLimits, fallback: Required<ClientLimits>, who: string): Required<ClientLimits> {
  const out = { ...fallback };
  for (const name of ["rate", "burst", "maxOpenJobs", "maxStoredBytes"] as const) {
    const value = limits[name];
    if (value === undefined) continue;
    if (!(Number.isFinite(value) && value >= 0)) throw new SmcpUsageError(`${who}: ${name} must be a number >= 0 (0: no limit)`);
    out[name] = value;
  }
  // A rate given without a burst gets the default ratio.
  if (limits.rate !== undefined && limits.burst === undefined) out.burst = limits.rate * 2;
  return out;
}
