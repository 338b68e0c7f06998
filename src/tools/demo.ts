import { z } from "zod";
import { SmcpError } from "../protocol/errors.js";
import { JsonObjectSchema } from "../protocol/messages.js";
import { sleep } from "../util/abort.js";
import { defineTool } from "./define.js";

/** `batch_sum`: count and total of a non-empty list of finite numbers (the seed's sync example). */
export const batchSum = defineTool({
  name: "batch_sum",
  description: "Adds a non-empty list of numbers and returns their count and total.",
  input: z.strictObject({
    numbers: z.array(z.number()).min(1).describe("The numbers to add (at least one; strings are not numbers)."),
  }),
  output: z.strictObject({
    count: z.int().min(1).describe("How many numbers were added."),
    total: z.number().describe("Their sum."),
  }),
  handler: ({ numbers }) => {
    let total = 0;
    for (const n of numbers) total += n;
    if (!Number.isFinite(total)) throw new SmcpError("bad_args", "the total overflows to infinity");
    return { count: numbers.length, total };
  },
});

/** `start_long_task`: a job that waits `seconds` (reporting progress each second) and returns `payload` (the seed's job example). */
export const startLongTask = defineTool({
  kind: "job",
  name: "start_long_task",
  description:
    "Starts a job that takes `seconds` (1-20), reporting {done, total} each second, then completes with `payload` as its result.",
  input: z.strictObject({
    seconds: z.int().min(1).max(20).describe("How long the job takes, in whole seconds."),
    payload: JsonObjectSchema.default({}).describe("Any JSON object; it becomes the job's result."),
    idempotency_key: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("Starting again with the same key and arguments returns the same job."),
  }),
  output: JsonObjectSchema.describe("The payload, unchanged."),
  handler: async ({ seconds, payload }, ctx) => {
    for (let done = 1; done <= seconds; done++) {
      await sleep(1000, ctx.signal);
      if (done < seconds) await ctx.progress({ done, total: seconds });
    }
    return payload;
  },
});

/**
 * The seed's example tools, `batch_sum` and `start_long_task`. `smcp serve`
 * offers them (the seed's flow and its interop need them); a library server
 * offers them only when given them.
 */
export const demoTools = [batchSum, startLongTask] as const;
