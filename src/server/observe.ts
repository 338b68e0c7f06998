import { createRequire } from "node:module";
import pino, { type DestinationStream, type Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { NonceStore } from "../jobs/nonces.js";
import type { JobStore } from "../jobs/store.js";
import { redactUrl } from "../util/redact.js";
import { logIds } from "../util/trace.js";
import type { StrayError } from "./guards.js";
import type { MetricsEndpoint } from "./http-common.js";
import type { JobEvent, OverdueEvent, RequestEvent, ServerObserver } from "./observer.js";
import type { RegistryEvent } from "./registry-follow.js";

/** Options for {@link createObservability}. */
export interface ObservabilityOptions {
  /** Build Prometheus metrics (served at `GET /metrics` by `serveHttp`'s `metrics` option). Default false. */
  metrics?: boolean;
  /** Label request metrics with the client id (the operator's choice: ids are cardinality). Default false. */
  perClientMetrics?: boolean;
  /** Log level: `fatal`, `error`, `warn`, `info` (one line per request), `debug`, `silent`. Default `info`. */
  logLevel?: string;
  /** Where log lines go. Default: stderr, JSON lines (human-readable through pino-pretty when `pretty`). */
  destination?: DestinationStream;
  /** Human-readable lines instead of JSON (a terminal). Default false. */
  pretty?: boolean;
  /** Stores whose state the metrics report (jobs by state, nonces held). */
  stores?: { jobStore?: JobStore; nonceStore?: NonceStore };
  /** Long polls held now (a gauge). */
  heldPolls?: () => number;
  /**
   * Most bytes of log lines held while the reader (a pipe, a terminal, a
   * log shipper) falls behind; past it lines are dropped and counted
   * (`smcp_log_lines_dropped_total`), and one line says so once the reader
   * is back. Default `DEFAULT_LOG_BUFFER_BYTES`. Ignored with `destination`.
   */
  logBufferBytes?: number;
}

/** Default bound on log lines waiting for a slow reader: 8 MiB. */
export const DEFAULT_LOG_BUFFER_BYTES = 8 * 1024 * 1024;

/** Metrics and logs for one server or worker process. */
export interface Observability {
  /** Give it to `createServer({ observer })` / `createWorker({ onJob })`. */
  observer: ServerObserver & {
    job(event: JobEvent): void;
    overdue(event: OverdueEvent): void;
    forbidden(event: { clientId: string; tool: string | undefined }): void;
  };
  /** Give it to `installProcessGuards({ onStray })`: logs and counts an error tool code let escape. */
  stray(event: StrayError): void;
  /** Give it to `followRegistry({ onReload })`: logs each registry reload, counts failures. */
  registry(event: RegistryEvent): void;
  logger: Logger;
  metrics: MetricsEndpoint | undefined;
  /** Flushes the log. */
  close(): Promise<void>;
}

/**
 * Turns a server's events into structured JSON logs (pino: one line per
 * request with request_id, client_id, tool, code, HTTP status and duration;
 * job transitions; one line when a store goes down and one when it is back)
 * and, when asked, Prometheus metrics (prom-client, its own registry).
 * Never a secret or an argument value; client ids in metric labels only with
 * `perClientMetrics`.
 */
export function createObservability(options: ObservabilityOptions = {}): Observability {
  const own = options.destination
    ? undefined
    : // minLength 0: a line is written as soon as the previous write is done (lines that arrive
      // meanwhile go out together), so logs show up when things happen, not when 4 KB fill up.
      pino.destination({ dest: 2, sync: false, minLength: 0, maxLength: options.logBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES });
  const destination = options.destination ?? (own as DestinationStream);
  const dropped = { lines: 0, unreported: 0 };
  // Each line logged while a span is active carries its `trace_id` and `span_id`.
  const loggerOptions = { level: options.logLevel ?? "info", base: null, mixin: () => logIds() ?? {} };
  const logger = options.pretty ? pino(loggerOptions, prettyStream(destination)) : pino(loggerOptions, destination);
  const metrics = options.metrics ? buildMetrics(options, dropped) : undefined;
  const logRequests = logger.isLevelEnabled("info");
  if (own) {
    // A stalled reader must not grow memory without bound: past maxLength SonicBoom drops the line.
    own.on("drop", (data: string) => {
      const lines = countLines(data);
      dropped.lines += lines;
      dropped.unreported += lines;
    });
    // Everything buffered was written: the reader keeps up again, so say what it missed, once.
    own.on("drain", () => {
      if (dropped.unreported === 0) return;
      const lines = dropped.unreported;
      dropped.unreported = 0;
      logger.warn({ dropped_lines: lines }, "the log reader fell behind: lines were dropped (smcp_log_lines_dropped_total)");
    });
    // A crash or process.exit: what is still buffered goes out before the process ends.
    process.once("exit", () => {
      try {
        own.flushSync();
      } catch {
        // Nothing more can be done at exit (the reader is gone).
      }
    });
  }

  // JSON lines to smcp's own stream: the per-request line is written by hand, byte for byte what pino writes for
  // it (tested), at a fifth of pino's CPU (its generic serialiser): it is the one line every request writes. A
  // destination given in code gets pino's own writes, which carry what a stream like pino.multistream routes by.
  const requestLine = own && !options.pretty ? (event: RequestEvent) => own.write(requestLogLine(event, Date.now())) : undefined;
  const observer = {
    request(event: RequestEvent) {
      metrics?.request(event);
      if (!logRequests) return;
      if (requestLine) requestLine(event);
      else logRequest(logger, event);
    },
    job(event: JobEvent) {
      metrics?.job(event);
      logger.info(
        {
          job_id: event.jobId,
          tool: event.tool,
          client_id: event.clientId,
          code: event.code,
          queue_wait_ms: event.queueWaitMs,
          run_ms: event.runMs,
        },
        `job ${event.event}`,
      );
    },
    store(event: { healthy: boolean; error?: unknown }) {
      metrics?.store(event.healthy);
      if (event.healthy) logger.warn("store available again");
      else logger.error({ error: describeError(event.error) }, "store unavailable: answering 503 unavailable until it is back");
    },
    rateLimited(event: { clientId: string; reason: string }) {
      metrics?.limited(event.reason);
      logger.debug({ client_id: event.clientId, reason: event.reason }, "rate limited");
    },
    forbidden(event: { clientId: string; tool: string | undefined }) {
      metrics?.forbidden(event.tool ?? "", event.clientId);
      logger.info({ client_id: event.clientId, tool: event.tool }, "forbidden: the client's scopes do not allow this tool");
    },
    overdue(event: OverdueEvent) {
      metrics?.overdue(event);
      if (event.event === "overdue") {
        logger.warn(
          { tool: event.tool, overdue: event.overdue },
          "a tool run outlived its time limit: its handler ignores its abort signal and still runs",
        );
      } else logger.info({ tool: event.tool, overdue: event.overdue }, "an overdue tool run ended");
    },
  };
  return {
    observer,
    stray(event: StrayError) {
      metrics?.stray(event.kind);
      logger.error(
        { kind: event.kind, tools_running: event.toolsRunning, error: describeError(event.error), at: whereFrom(event.error) },
        "an error escaped tool code (not awaited or thrown from a callback); the server goes on",
      );
      // Rare and important: written now, not when the buffer next fills.
      logger.flush();
    },
    registry(event: RegistryEvent) {
      metrics?.registryReload(event);
      if (event.ok) {
        logger.info(
          { version: event.version, clients: event.clients, trigger: event.trigger, cancelled_jobs: event.cancelledJobs },
          "client registry loaded",
        );
      } else {
        // The reason names the file and the client (for the operator); the registry in force stays.
        logger.error(
          { trigger: event.trigger, reason: event.reason, error: describeError(event.error) },
          "client registry not reloaded; the one in force stays",
        );
      }
    },
    logger,
    metrics: metrics && { contentType: metrics.registry.contentType, render: () => metrics.registry.metrics() },
    close: () =>
      new Promise<void>((resolve) => {
        logger.flush(() => resolve());
      }),
  };
}

/** A request's line through pino: the pretty format's path, and what {@link requestLogLine} is held to. */
export function logRequest(logger: Logger, event: RequestEvent): void {
  logger.info(
    {
      request_id: event.requestId,
      client_id: event.clientId,
      tool: event.tool,
      code: event.code ?? event.status,
      http_status: event.httpStatus,
      duration_ms: Math.round(event.durationMs * 100) / 100,
    },
    "request",
  );
}

/**
 * The line pino writes for a request at `info` with smcp's logger options (`base: null`, the trace ids'
 * mixin, epoch time): `{"level":30,"time":…,[trace_id, span_id,] request_id, client_id, tool, code,
 * http_status, duration_ms,"msg":"request"}`, members left out when undefined, strings as JSON.stringify
 * writes them. Exported for the test that holds it to pino's own output.
 */
export function requestLogLine(event: RequestEvent, time: number): string {
  const ids = logIds();
  let line = `{"level":30,"time":${time}`;
  if (ids) line += `,"trace_id":${JSON.stringify(ids.trace_id)},"span_id":${JSON.stringify(ids.span_id)}`;
  line += `,"request_id":${JSON.stringify(event.requestId)}`;
  if (event.clientId !== undefined) line += `,"client_id":${JSON.stringify(event.clientId)}`;
  if (event.tool !== undefined) line += `,"tool":${JSON.stringify(event.tool)}`;
  const code = event.code ?? event.status;
  if (code !== undefined) line += `,"code":${JSON.stringify(code)}`;
  return `${line},"http_status":${finite(event.httpStatus)},"duration_ms":${finite(Math.round(event.durationMs * 100) / 100)},"msg":"request"}\n`;
}

/** A number as pino writes one: as is, or null when not finite. */
function finite(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

function buildMetrics(options: ObservabilityOptions, dropped: { lines: number }) {
  const registry = new Registry();
  new Counter({
    name: "smcp_log_lines_dropped_total",
    help: "Log lines dropped because the log's reader fell behind by more than the log buffer.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(dropped.lines);
    },
  });
  collectDefaultMetrics({ register: registry });
  const perClient = options.perClientMetrics === true;
  const requests = new Counter({
    name: "smcp_requests_total",
    help: "Requests answered, by tool and code (ok, accepted, running, done, or the error code).",
    labelNames: perClient ? ["tool", "code", "client_id"] : ["tool", "code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "smcp_request_duration_seconds",
    help: "Time from the request's body to its signed answer, by tool.",
    labelNames: ["tool"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
    registers: [registry],
  });
  const jobs = new Counter({
    name: "smcp_job_transitions_total",
    help: "Job transitions made by this process, by tool and event.",
    labelNames: ["tool", "event"],
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: "smcp_job_queue_wait_seconds",
    help: "How long jobs waited, queued, before a worker started them.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800],
    registers: [registry],
  });
  const storeUp = new Gauge({
    name: "smcp_store_up",
    help: "1 while the stores answer, 0 during an outage.",
    registers: [registry],
  });
  storeUp.set(1);
  const storeOutages = new Counter({ name: "smcp_store_outages_total", help: "Store outages seen.", registers: [registry] });
  const limited = new Counter({
    name: "smcp_rate_limited_total",
    help: "Requests refused with rate_limited, by reason (rate, open_jobs, stored_bytes, long_polls, store_full).",
    labelNames: ["reason"],
    registers: [registry],
  });
  const overdueNow = new Gauge({
    name: "smcp_tool_runs_overdue",
    help: "Tool runs still going after their caller was answered (timeout, cancel): handlers that ignore their abort signal.",
    labelNames: ["tool"],
    registers: [registry],
  });
  const overdueTotal = new Counter({
    name: "smcp_tool_runs_overdue_total",
    help: "Tool runs that outlived their timeout or abort, by tool.",
    labelNames: ["tool"],
    registers: [registry],
  });
  const forbidden = new Counter({
    name: "smcp_forbidden_total",
    help: "Calls refused with forbidden (the client's scopes do not allow the tool), by tool.",
    labelNames: perClient ? ["tool", "client_id"] : ["tool"],
    registers: [registry],
  });
  const reloadFailures = new Counter({
    name: "smcp_registry_reload_failures_total",
    help: "Client registry reloads that failed (the registry in force stayed), by reason.",
    labelNames: ["reason"],
    registers: [registry],
  });
  const registryVersion = new Gauge({
    name: "smcp_registry_version",
    help: "Version of the client registry in force.",
    registers: [registry],
  });
  const strays = new Counter({
    name: "smcp_stray_errors_total",
    help: "Errors tool code let escape (unhandled rejections, exceptions thrown from callbacks), caught and survived.",
    labelNames: ["kind"],
    registers: [registry],
  });
  const { jobStore, nonceStore } = options.stores ?? {};
  if (jobStore) {
    new Gauge({
      name: "smcp_jobs",
      help: "Jobs in the store by state (queued, running, finished and retained).",
      labelNames: ["state"],
      registers: [registry],
      async collect() {
        const counts = await jobStore.counts().catch(() => undefined);
        if (!counts) return;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }
  const stats = nonceStore && (nonceStore as { stats?: () => { held: number; capacityHeld?: number } }).stats;
  if (nonceStore && stats) {
    new Gauge({
      name: "smcp_nonces_held",
      help: "(client_id, nonce) pairs the replay cache holds now.",
      registers: [registry],
      collect() {
        this.set(stats.call(nonceStore).held);
      },
    });
    new Gauge({
      name: "smcp_nonces_capacity",
      help: "Pairs the replay cache can hold before it refuses new requests (unavailable).",
      registers: [registry],
      collect() {
        const capacity = stats.call(nonceStore).capacityHeld;
        if (capacity !== undefined) this.set(capacity);
      },
    });
  }
  const heldPolls = options.heldPolls;
  if (heldPolls) {
    new Gauge({
      name: "smcp_long_polls_held",
      help: "poll_job calls with wait_ms held open now.",
      registers: [registry],
      collect() {
        this.set(heldPolls());
      },
    });
  }
  return {
    registry,
    request(event: RequestEvent) {
      const tool = event.tool ?? "";
      const code = event.code ?? event.status;
      if (perClient) requests.inc({ tool, code, client_id: event.clientId ?? "" });
      else requests.inc({ tool, code });
      latency.observe({ tool }, event.durationMs / 1000);
    },
    job(event: JobEvent) {
      jobs.inc({ tool: event.tool, event: event.event });
      if (event.queueWaitMs !== undefined) queueWait.observe(event.queueWaitMs / 1000);
    },
    store(healthy: boolean) {
      storeUp.set(healthy ? 1 : 0);
      if (!healthy) storeOutages.inc();
    },
    limited(reason: string) {
      limited.inc({ reason });
    },
    overdue(event: OverdueEvent) {
      overdueNow.set({ tool: event.tool }, event.overdue);
      if (event.event === "overdue") overdueTotal.inc({ tool: event.tool });
    },
    stray(kind: string) {
      strays.inc({ kind });
    },
    forbidden(tool: string, clientId: string) {
      if (perClient) forbidden.inc({ tool, client_id: clientId });
      else forbidden.inc({ tool });
    },
    registryReload(event: RegistryEvent) {
      if (event.ok) registryVersion.set(event.version);
      else reloadFailures.inc({ reason: event.reason });
    },
  };
}

function prettyStream(destination: DestinationStream): DestinationStream {
  try {
    const pretty = createRequire(import.meta.url)("pino-pretty") as (options: object) => DestinationStream;
    return pretty({ destination, colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" });
  } catch {
    return destination; // pino-pretty is not installed: JSON lines
  }
}

function countLines(data: string): number {
  let n = 0;
  for (let i = data.indexOf("\n"); i !== -1; i = data.indexOf("\n", i + 1)) n++;
  return Math.max(1, n);
}

/** The first frame of an error's stack outside node's own code: where stray tool code lives (a file and line, no values). */
function whereFrom(error: unknown): string | undefined {
  const stack = error instanceof Error && typeof error.stack === "string" ? error.stack : undefined;
  const frame = stack?.split("\n").find((line) => line.trimStart().startsWith("at ") && !line.includes("node:"));
  return frame?.trim().slice(3, 300);
}

/** An error's message for a log line (never its stack or a URL password). */
function describeError(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return redactUrl(error instanceof Error ? error.message : String(error));
}
