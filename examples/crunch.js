// A tool module for `smcp serve --tools` and `smcp worker --tools` (the README's deployment recipes).
// Plain JavaScript, so it runs without a build step; a .ts module works too when tsx is installed.
import { defineTool } from "smcp";
import { z } from "zod";

/** A job tool: sorts numbers slowly, reporting progress; any worker with this module runs it. */
export const crunch = defineTool({
  kind: "job",
  name: "crunch",
  description: "Sorts a list of numbers, one step at a time, and reports its progress.",
  input: z.strictObject({ numbers: z.array(z.number()).min(1).max(1000) }),
  output: z.strictObject({ sorted: z.array(z.number()), worker: z.number().int() }),
  timeoutMs: 60_000,
  handler: async ({ numbers }, ctx) => {
    const sorted = [...numbers].sort((a, b) => a - b);
    for (let done = 1; done <= 3; done++) {
      ctx.signal.throwIfAborted(); // cancel_job stops the work
      await new Promise((resolve) => setTimeout(resolve, 200));
      await ctx.progress({ done, total: 3, message: `step ${done} of 3` });
    }
    return { sorted, worker: process.pid };
  },
});

/** A sync tool from the same module: the API replica answers it itself. */
export const median = defineTool({
  name: "median",
  description: "The median of a non-empty list of numbers.",
  input: z.strictObject({ numbers: z.array(z.number()).min(1) }),
  output: z.strictObject({ median: z.number() }),
  handler: ({ numbers }) => {
    const sorted = [...numbers].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return { median: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2 };
  },
});
