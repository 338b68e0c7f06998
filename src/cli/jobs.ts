import { SmcpUsageError } from "../protocol/errors.js";
import { parseCommand } from "./args.js";
import { parseInteger } from "./config.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, talk } from "./connect.js";
import type { CliIO } from "./io.js";
import { oneLine, report } from "./output.js";

/** `smcp jobs --help`. */
export const JOBS_HELP = `usage: smcp jobs [--limit N] [--state STATE] [--tool NAME] [--json] [options]

Lists this client's recent jobs, newest first: id, tool, state and age
(a verified list_jobs call). \`smcp wait JOB_ID\` follows one.

  --limit N              at most N jobs (1-100, default 20)
  --state STATE          only jobs in STATE: queued, running, done, error, cancelled
  --tool NAME            only jobs of the tool NAME
  --json                 print the whole verified response object

${CONNECTION_HELP}`;

const STATES = new Set(["queued", "running", "done", "error", "cancelled"]);

/** `smcp jobs`. */
export async function jobsCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "jobs",
      help: JOBS_HELP,
      options: {
        ...CONNECTION_FLAGS,
        json: { type: "boolean" },
        limit: { type: "string" },
        state: { type: "string" },
        tool: { type: "string" },
      },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const limit = parseInteger(flags.string("limit") ?? "20", "--limit", 1, 100);
  const state = flags.string("state");
  if (state !== undefined && !STATES.has(state)) {
    throw new SmcpUsageError(`--state must be one of ${[...STATES].join(", ")}`);
  }
  const connection = connect(flags, io);
  return talk(connection, io, async (client) => {
    const tool = flags.string("tool");
    const filter = { ...(state === undefined ? {} : { state }), ...(tool === undefined ? {} : { tool }) };
    const response = await client.request("list_jobs", { limit, ...filter });
    if (flags.boolean("json")) {
      io.out(connection.lastAnswer());
      return response.ok ? 0 : 1;
    }
    if (!response.ok) return report(response, io, false);
    const jobs = Array.isArray(response.result?.jobs) ? response.result.jobs : [];
    if (jobs.length === 0) io.err("no jobs");
    const now = Date.now();
    for (const job of jobs) {
      const { job_id, tool, state: jobState, created_ms } = job as Record<string, unknown>;
      const age = typeof created_ms === "number" ? formatAge(now - created_ms) : "?";
      io.out(`${oneLine(String(job_id), 80)}  ${oneLine(String(tool), 64).padEnd(20)} ${String(jobState).padEnd(9)} ${age} ago`);
    }
    return 0;
  });
}

/** `1500` → `1s`, `125000` → `2m5s`, `7_300_000` → `2h1m`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d`;
}
