// Job tools for the processes bench/jobs.ts starts (`smcp serve --tools`,
// `smcp worker --tools`): the job's end on the host's monotonic clock, which
// every process on the host shares (CLOCK_MONOTONIC), for end-to-receipt latency.
import { setTimeout as sleep } from "node:timers/promises";
import { defineTool } from "smcp";
import { z } from "zod";

/** Microseconds on the host's monotonic clock (the same in every process of the host). */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** `clock_job`: waits `delay_ms`, then ends with the time its handler returned. */
export const clockJob = defineTool({
  kind: "job",
  name: "clock_job",
  description: "Waits delay_ms, then ends with ended_us: when its handler returned, in µs on the host's monotonic clock.",
  input: z.strictObject({ delay_ms: z.int().min(0).max(10_000) }),
  output: z.strictObject({ ended_us: z.int() }),
  handler: async ({ delay_ms }, ctx) => {
    if (delay_ms > 0) await sleep(delay_ms, undefined, { signal: ctx.signal });
    return { ended_us: monotonicMicros() };
  },
});
