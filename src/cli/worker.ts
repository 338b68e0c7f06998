import { openStores } from "../backends/open.js";
import { DEFAULT_CONCURRENCY } from "../jobs/engine.js";
import { DEFAULT_JOB_RETENTION_MS } from "../jobs/store.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { installProcessGuards } from "../server/guards.js";
import { createObservability } from "../server/observe.js";
import { createWorker } from "../server/worker.js";
import { demoTools } from "../tools/demo.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { DEFAULT_SERVER_ID, keyringPath, parseInteger, readKeyringFile } from "./config.js";
import { armStopDeadline, type CliIO, stopSignal } from "./io.js";
import { describe, JOB_FLAGS, jobSettings, LOG_FLAGS, logSettings, withDemoTools } from "./serve.js";

/** `smcp worker --help`. */
export const WORKER_HELP = `usage: smcp worker --store URL [--tools MODULE]... [options]

Executes the jobs that API replicas (\`smcp serve --no-worker\`) enqueue, until
SIGTERM or SIGINT; then its running jobs go back to the queue for another
worker. It takes only jobs of the tools it has (its --tools modules, and the
start_long_task demo when it has no --tools or is given --demo-tools): a job whose tool no worker has
waits, queued, for one that has it. A worker that dies mid-job has its jobs
picked up by another once their lease lapses (at-least-once), or failed once
their attempts are spent.

  --store URL            the shared store (redis://…, postgres://… or sqlite:PATH)   SMCP_STORE
                         on Redis, the same queue= as the API replicas (docs/stores.md)
  --tools MODULE         your job tools (repeatable), as for serve       SMCP_TOOLS=a.js,b.js
  --demo-tools           also run the reference tutorial's start_long_task (on by default without --tools)
  --no-demo-tools        leave it out
  --server-id ID         the server id job handlers see                  SMCP_SERVER_ID
  --concurrency N        jobs run at once, per tool                      SMCP_CONCURRENCY default ${DEFAULT_CONCURRENCY}
  --hide-tool-errors     answer a tool's unexpected errors with "the tool failed"   SMCP_HIDE_TOOL_ERRORS=1
  --max-overdue-runs N   runs of one tool past their timeout before new ones fail   default 32
  --lease-ms N           lease of a running job                          SMCP_LEASE_MS    default 30000
  --retention-ms N       finished jobs are deleted this long after they end   SMCP_RETENTION_MS default 86400000
  --log-level LEVEL      fatal, error, warn, info (a line per job transition), debug, silent   default info
  --log-format F         json or pretty (default: pretty on a terminal)
  --log-buffer-bytes N   log held for a slow reader; past it lines are dropped and counted (default 8388608)
  --config PATH          keyring file (for the store and server id)      SMCP_CONFIG`;

/** `smcp worker`. */
export async function workerCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "worker",
      help: WORKER_HELP,
      options: {
        ...JOB_FLAGS,
        ...LOG_FLAGS,
        "server-id": { type: "string" },
        "no-demo-tools": { type: "boolean" },
        "demo-tools": { type: "boolean" },
        "retention-ms": { type: "string" },
      },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const file = readKeyringFile(keyringPath(flags.string("config"), io.env));
  const store = flags.string("store") ?? io.env.SMCP_STORE ?? file?.store;
  if (!store) throw new SmcpUsageError("missing store: pass --store redis://HOST:PORT (or postgres://…) or set SMCP_STORE");
  if (store === "memory") {
    throw new SmcpUsageError(
      "a worker needs a shared store: --store redis://HOST:PORT or postgres://… (memory jobs live in the API process)",
    );
  }
  const { concurrency, leaseMs, tools, hideToolErrors, maxOverdueRuns } = await jobSettings(flags, io.env);
  const retentionMs = parseInteger(
    flags.string("retention-ms") ?? io.env.SMCP_RETENTION_MS ?? String(DEFAULT_JOB_RETENTION_MS),
    "--retention-ms",
    1000,
    365 * 86_400_000,
  );
  const observe = createObservability(logSettings(flags, io));
  const log = observe.logger;
  const stores = await openStores(store, { retentionMs, onError: (e) => log.error({ error: describe(e) }, "store unavailable") });
  const serverId = flags.string("server-id") ?? io.env.SMCP_SERVER_ID ?? file?.server_id ?? DEFAULT_SERVER_ID;
  const worker = createWorker({
    stores,
    tools: withDemoTools(flags, tools.length > 0) ? [...demoTools, ...tools] : tools,
    concurrency,
    leaseMs,
    serverId,
    sweepEveryMs: Math.min(60_000, Math.max(1000, Math.floor(retentionMs / 4))),
    onJob: observe.observer.job,
    onOverdue: observe.observer.overdue,
    hideToolErrors,
    maxOverdueRuns,
    onError: (e, ctx) =>
      log.error({ phase: ctx.phase, tool: ctx.tool, job_id: ctx.jobId, error: describe(e) }, `${ctx.phase} error`),
  });
  const unguard = installProcessGuards({ onStray: observe.stray, runningTools: () => worker.runs.runningTools() });
  // Listen for the stop before saying we are up: a signal sent as soon as the line is read needs a handler.
  const stopping = stopSignal();
  log.info({ worker_id: worker.workerId, store: redactUrl(store), tools: worker.tools }, "worker started");
  io.out(`worker ${worker.workerId} on ${redactUrl(store)}, tools: ${worker.tools.join(", ")}`);
  // Stay up until told to stop: with SQLite nothing else holds the event loop (the queue polls on an unref'd timer).
  const alive = setInterval(() => {}, 2 ** 30);
  const signal = await stopping;
  clearInterval(alive);
  log.info(`${signal}: handing running jobs back to the queue`);
  armStopDeadline({ signal, env: io.env, log: (message) => log.error(message) });
  await worker.close();
  unguard();
  log.info("stopped");
  await observe.close();
  return 0;
}
