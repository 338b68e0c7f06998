import type { RateLimiterAbstract } from "rate-limiter-flexible";

/** A rate limiter as rate-limiter-flexible makes them. */
export type RateLimiter = Pick<RateLimiterAbstract, "consume">;

/** Makes the limiter that counts one configuration's points (memory by default; Redis for replicas). */
export type RateLimiterFactory = (config: { points: number; duration: number; keyPrefix: string }) => RateLimiter;
