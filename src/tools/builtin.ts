import { z } from "zod";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";
import { JsonObjectSchema } from "../protocol/messages.js";
import { sleep } from "../util/abort.js";
import { defineTool, type JobView, StatusReply } from "./define.js";

const jsonObject = JsonObjectSchema;

/** `server_identity`: who this server is. The fingerprint is a key label, not a hash of the secret. */
export const serverIdentity = defineTool({
  name: "server_identity",
  description: "Returns the server id, the label of its signing key and its capabilities.",
  input: z.strictObject({}),
  output: z.strictObject({ server_id: z.string(), fingerprint: z.string(), capabilities: jsonObject }),
  handler: (_args, ctx) => ({
    server_id: ctx.server.id,
    fingerprint: ctx.server.fingerprint,
    capabilities: ctx.server.capabilities,
  }),
});

/** `batch_sum`: count and total of a non-empty list of finite numbers. */
export const batchSum = defineTool({
  name: "batch_sum",
  description: "Adds a non-empty list of numbers and returns their count and total.",
  input: z.strictObject({ numbers: z.array(z.number()).min(1) }),
  output: z.strictObject({ count: z.number().int(), total: z.number() }),
  handler: ({ numbers }) => {
    let total = 0;
    for (const n of numbers) total += n;
    if (!Number.isFinite(total)) throw new SmcpError("bad_args", "the total overflows to infinity");
    return { count: numbers.length, total };
  },
});

/** `start_long_task`: a job that waits `seconds` (reporting progress each second) and returns `payload`. */
export const startLongTask = defineTool({
  kind: "job",
  name: "start_long_task",
  description: "Starts a job that takes `seconds` (1-20) and then completes with `payload` as its result.",
  input: z.strictObject({
    seconds: z.number().int().min(1).max(20),
    payload: jsonObject.default({}),
    idempotency_key: z.string().min(1).max(200).optional(),
  }),
  output: jsonObject,
  handler: async ({ seconds, payload }, ctx) => {
    for (let done = 1; done <= seconds; done++) {
      await sleep(1000, ctx.signal);
      if (done < seconds) await ctx.progress({ done, total: seconds });
    }
    return payload;
  },
});

const jobIdInput = z.strictObject({ job_id: z.string().min(1).max(256) });

/** How a job's state reads on the wire (SPEC §4, `poll_job`). */
export function jobStatusReply(job: JobView): StatusReply {
  switch (job.state) {
    case "queued":
    case "running":
      return new StatusReply("running", { job_id: job.id, state: job.state, progress: job.progress });
    case "done":
      return new StatusReply("done", job.result ?? {});
    default: {
      const error = job.error ?? { code: "cancelled", message: "cancelled" };
      return new StatusReply("error", { job_id: job.id, code: error.code }, error);
    }
  }
}

/** `poll_job`: a job's state; `unknown_job` for an id this client did not start. */
export const pollJob = defineTool({
  name: "poll_job",
  description: "Reports a job's state: running (with progress), done (with its result) or error.",
  input: jobIdInput,
  output: jsonObject,
  handler: async ({ job_id }, ctx) => {
    const job = await ctx.jobs.get(job_id);
    if (!job) throw new SmcpError("unknown_job", `no job '${job_id}' for this client`);
    return jobStatusReply(job);
  },
});

/** `cancel_job`: cancels a queued or running job; a finished job is left as it is. */
export const cancelJob = defineTool({
  name: "cancel_job",
  description: "Cancels a job: a queued job never runs, a running one is aborted. Reports the job's state after.",
  input: jobIdInput,
  output: z.strictObject({ job_id: z.string(), state: z.string(), cancelled: z.boolean() }),
  handler: async ({ job_id }, ctx) => {
    const job = await ctx.jobs.cancel(job_id);
    if (!job) throw new SmcpError("unknown_job", `no job '${job_id}' for this client`);
    return { job_id, state: job.state, cancelled: job.state === "cancelled" };
  },
});

/** `list_tools`: every tool with its JSON Schemas. */
export const listTools = defineTool({
  name: "list_tools",
  description: "Lists the server's tools with the JSON Schemas of their input and output.",
  input: z.strictObject({}),
  output: z.strictObject({ tools: z.array(jsonObject) }),
  handler: (_args, ctx) => ({ tools: ctx.tools() as unknown as JsonObject[] }),
});

/** The tools every smcp server offers unless configured otherwise. */
export const builtinTools = [serverIdentity, batchSum, startLongTask, pollJob, cancelJob, listTools] as const;
