import { z } from "zod";
import { SmcpError } from "../protocol/errors.js";
import { JsonObjectSchema, MAX_WAIT_MS } from "../protocol/messages.js";
import { defineTool, type JobView, StatusReply } from "./define.js";

const JOB_STATES = ["queued", "running", "done", "error", "cancelled"] as const;

/** `server_identity`: who this server is. The fingerprint is a key label, not a hash of the secret. */
export const serverIdentity = defineTool({
  name: "server_identity",
  description: "Returns the server id, the label of its signing key and its capabilities.",
  input: z.strictObject({}),
  output: z.strictObject({
    server_id: z.string().describe("The id envelopes must carry in server_id."),
    fingerprint: z.string().describe("Label (kid) of the signing key; never derived from the secret."),
    capabilities: JsonObjectSchema.describe("What this server supports (async, cancel, progress, long_poll, signatures...)."),
  }),
  handler: (_args, ctx) => ({
    server_id: ctx.server.id,
    fingerprint: ctx.server.fingerprint,
    capabilities: ctx.server.capabilities,
  }),
});

export { MAX_WAIT_MS };

const jobId = z.string().min(1).max(256).describe("The job_id an `accepted` answer returned.");

/** What `poll_job` answers while a job is open (status `running`). */
const OpenJob = z.strictObject({
  job_id: z.string(),
  state: z.enum(["queued", "running"]).describe("queued: waiting for a worker; running: a worker has it."),
  progress: JsonObjectSchema.nullable().describe("The job's latest progress report, e.g. {done, total} or {message}."),
  version: z.int().min(1).describe("Bumped by each progress report; give it back as `version` in the next long poll."),
  note: z.string().optional().describe("Present when no worker takes this tool now: the job waits for one."),
});
/** What `poll_job` answers for a job that ended in error (status `error`). */
const FailedJob = z.strictObject({
  job_id: z.string(),
  code: z.string().describe("tool_failed, bad_output, cancelled, unavailable, ..."),
});

/** How a job's state reads on the wire (SPEC §4, `poll_job`). */
export function jobStatusReply(job: JobView): StatusReply {
  switch (job.state) {
    case "queued":
    case "running":
      return new StatusReply("running", {
        job_id: job.id,
        state: job.state,
        progress: job.progress,
        version: job.version,
        ...(job.unserved ? { note: "no worker takes this tool now; the job waits, queued, for one" } : {}),
      });
    case "done":
      return new StatusReply("done", job.result ?? {});
    default: {
      // Every store records why a job ended (jobs/policy.ts: CANCELLED_ERROR for a cancel); its state, failing that.
      const error = job.error ?? { code: job.state, message: job.state };
      return new StatusReply("error", { job_id: job.id, code: error.code }, error);
    }
  }
}

/** `poll_job`: a job's state; `unknown_job` for an id this client did not start. */
export const pollJob = defineTool({
  name: "poll_job",
  description:
    "Reports a job's state: status running with {job_id, state, progress, version}, done with the job's result, or error with {job_id, code}.",
  input: z.strictObject({
    job_id: jobId,
    wait_ms: z
      .int()
      .min(0)
      .max(MAX_WAIT_MS)
      .optional()
      .describe("Long poll (SPEC §8): answer as soon as an open job ends or reports progress, or after this many ms."),
    version: z
      .int()
      .min(1)
      .optional()
      .describe("With wait_ms: the version last seen (1 when accepted); a job already past it is answered at once."),
  }),
  output: z
    .union([OpenJob, FailedJob, JsonObjectSchema.describe("done: the job's result")])
    .describe("running: {job_id, state, progress}; done: the job's result; error: {job_id, code}"),
  handler: async ({ job_id, wait_ms, version }, ctx) => {
    const job = await ctx.jobs.get(job_id, { waitMs: wait_ms ?? 0, version });
    if (!job) throw new SmcpError("unknown_job", "no such job for this client");
    return jobStatusReply(job);
  },
});

/** `cancel_job`: cancels a queued or running job; a finished job is left as it is. */
export const cancelJob = defineTool({
  name: "cancel_job",
  description: "Cancels a job: a queued job never runs, a running one is aborted, a finished one is left alone.",
  input: z.strictObject({ job_id: jobId }),
  output: z.strictObject({
    job_id: z.string(),
    state: z.enum(JOB_STATES).describe("The job's state after the call."),
    cancelled: z.boolean().describe("True when the job is now cancelled."),
  }),
  handler: async ({ job_id }, ctx) => {
    const job = await ctx.jobs.cancel(job_id);
    if (!job) throw new SmcpError("unknown_job", "no such job for this client");
    return { job_id, state: job.state, cancelled: job.state === "cancelled" };
  },
});

/** `list_jobs`: the calling client's recent jobs, newest first, optionally only those in one state or of one tool. */
export const listJobs = defineTool({
  name: "list_jobs",
  description:
    "Lists the calling client's recent jobs, newest first (finished jobs stay listed until their retention ends); `state` and `tool` narrow the list. A client with the jobs:all scope sees every client's, or one client's with `client_id`.",
  input: z.strictObject({
    limit: z.int().min(1).max(100).default(20).describe("How many jobs at most."),
    state: z.enum(JOB_STATES).optional().describe("Only jobs in this state."),
    // Bounded like a job id: the name is compared, never echoed into an error.
    tool: z.string().min(1).max(256).optional().describe("Only jobs of this tool (its exact name)."),
    client_id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("Only this client's jobs: for a client with the jobs:all scope (SPEC §9); others see only their own."),
  }),
  output: z.strictObject({
    jobs: z.array(
      z.strictObject({
        job_id: z.string(),
        tool: z.string(),
        state: z.enum(JOB_STATES),
        created_ms: z.int().describe("When the job was accepted (Unix ms)."),
        updated_ms: z.int().describe("When it last changed (Unix ms)."),
        client_id: z.string().optional().describe("Whose job it is: in lists for a jobs:all client."),
      }),
    ),
  }),
  handler: async ({ limit, state, tool, client_id }, ctx) => {
    // exactOptionalPropertyTypes: an absent filter is left out, not passed as undefined.
    const jobs = await ctx.jobs.list({
      limit,
      ...(state === undefined ? {} : { state }),
      ...(tool === undefined ? {} : { tool }),
      ...(client_id === undefined ? {} : { clientId: client_id }),
    });
    return {
      jobs: jobs.map((job) => ({
        job_id: job.id,
        tool: job.tool,
        state: job.state,
        created_ms: job.createdAt,
        updated_ms: job.updatedAt,
        ...(job.clientId === undefined ? {} : { client_id: job.clientId }),
      })),
    };
  },
});

/** `list_tools`: every tool with its JSON Schemas. */
export const listTools = defineTool({
  name: "list_tools",
  description: "Lists the server's tools with the JSON Schemas of their input and output.",
  input: z.strictObject({}),
  output: z.strictObject({
    tools: z.array(
      z.strictObject({
        name: z.string(),
        description: z.string(),
        kind: z.enum(["sync", "job"]).describe("sync: answers ok with the result; job: answers accepted with a job_id."),
        input_schema: JsonObjectSchema.describe("JSON Schema of args."),
        output_schema: JsonObjectSchema.describe("JSON Schema of the result (of the job's result, for a job tool)."),
      }),
    ),
  }),
  handler: (_args, ctx) => ({ tools: ctx.tools() }),
});

/** The tools every smcp server offers, whatever else it is given: identity, jobs, discovery. */
export const protocolTools = [serverIdentity, pollJob, cancelJob, listJobs, listTools] as const;

/** Names of the protocol's plumbing tools: what a bridge to MCP does not offer a model. */
export const PLUMBING_TOOLS: ReadonlySet<string> = new Set(["poll_job", "cancel_job", "list_jobs", "list_tools"]);
