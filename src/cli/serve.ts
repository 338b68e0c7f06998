import { isIP } from "node:net";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import type { RegistryStorage } from "../auth/store.js";
import { openStores } from "../backends/open.js";
import { forgetServer, recordServer, serversPath } from "../client/servers-file.js";
import { DEFAULT_CONCURRENCY } from "../jobs/engine.js";
import { DEFAULT_LEASE_MS } from "../jobs/runner.js";
import { DEFAULT_JOB_RETENTION_MS } from "../jobs/store.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { Keyring } from "../protocol/keyring.js";
import { isEd25519Secret } from "../protocol/keys.js";
import { createServer, DEFAULT_FRESHNESS_MS, DEFAULT_MAX_MESSAGE_BYTES, type SmcpServer } from "../server/core.js";
import { installProcessGuards } from "../server/guards.js";
import {
  DEFAULT_BODY_GRACE_MS,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_PENDING_PER_ADDRESS,
  DEFAULT_MIN_BODY_RATE,
} from "../server/http-common.js";
import { serveHttp } from "../server/http-node.js";
import type { ClientLimits, LimitsOptions } from "../server/limits.js";
import { createObservability, DEFAULT_LOG_BUFFER_BYTES } from "../server/observe.js";
import { followRegistry } from "../server/registry-follow.js";
import type { Tool } from "../tools/define.js";
import { demoTools } from "../tools/demo.js";
import { DEFAULT_MAX_OVERDUE_RUNS } from "../tools/runs.js";
import { redactUrl } from "../util/redact.js";
import { type Flags, parseCommand } from "./args.js";
import { isClusterWorker, reportListening, runCluster } from "./cluster.js";
import {
  createKeyringFile,
  DEFAULT_SERVER_ID,
  keyringPath,
  parseClientList,
  parseInteger,
  parseRate,
  readClientLimits,
  readKeyringFile,
  secretFile,
} from "./config.js";
import { armStopDeadline, type CliIO, stopSignal } from "./io.js";
import { MCP_SERVE_FLAGS, MCP_SERVE_HELP, mcpServeSettings, startMcpUpstreams } from "./mcp-serve.js";
import { type OpenRegistry, openClientSources } from "./registry.js";
import { loadToolModules } from "./tool-modules.js";

/** `smcp serve --help`. */
export const SERVE_HELP = `usage: smcp serve [options]

Runs an mcp/0.1 server over HTTP (POST /mcp, GET /healthz) until SIGTERM or
SIGINT, then shuts down gracefully. With no secrets given anywhere, creates
.smcp/keyring.json (mode 0600) with a random server key and a client
'local', which \`smcp call\` then reads; the file also records where the
server listens, so callers in this folder find it. --alg ed25519 makes it
with Ed25519 keys: the server side of the file holds only the client's
public key.

Each client is answered in its own key's algorithm: an HMAC client with the
first HMAC server secret, an Ed25519 client with the first ed25519-secret:.

options (flags win over environment, environment over the keyring file):
  --host HOST            listen address            SMCP_HOST       default 127.0.0.1
  --port N               port (0: any free one)    SMCP_PORT       default 8787
  --server-id ID         this server's id          SMCP_SERVER_ID  default ${DEFAULT_SERVER_ID}
  --server-secret S      signing key (repeatable): an HMAC secret (>= 16 B)
                         and/or an ed25519-secret:…  SMCP_SERVER_SECRET
  --server-secret-file P the same, read from a file (trailing newline dropped)
                                                   SMCP_SERVER_SECRET_FILE
  --client ID=KEY        a client (repeatable; an ID twice: two live keys): an
                         HMAC secret or its public key ed25519:…; ID=@PATH reads
                         the key from a file       SMCP_CLIENTS=id=key,id2=key2
  --scope ID=SCOPE       what client ID may do (repeatable; SPEC §9): tools:<pattern>
                         (* any run of characters) or jobs:all; a client without
                         any has tools:* (the keyring file: "scopes": [...] per client)
  --clients FILE         more clients, in the client registry format (schemas/clients.schema.json;
                         \`smcp clients … --clients FILE\` writes it); reloaded when it changes and on
                         SIGHUP, a bad file keeps the clients in force  SMCP_CLIENTS_FILE
  --clients-from-store   more clients, from the registry the --store keeps (sqlite:, redis://;
                         \`smcp clients … --store URL\`): changes reach every replica within 1 s
  --alg hmac|ed25519     keys of a new keyring file (first run)       default hmac
  --tools MODULE         your tools: an ES module (.js, or .ts with tsx installed) exporting
                         defineTool values or arrays of them (repeatable)  SMCP_TOOLS=a.js,b.js
  --demo-tools           serve the reference tutorial's examples (batch_sum, start_long_task) beside
                         your --tools or --mcp upstreams (without those, they are on by default)
  --no-demo-tools        leave them out even when nothing else is served
  --store URL            memory | sqlite:PATH | redis://HOST:PORT[/DB][?prefix=P][&queue=store]
                         | postgres://USER@HOST:PORT/DB[?schema=NAME] (created or upgraded at start)
                                                   SMCP_STORE      default sqlite:.smcp/smcp.db
  --no-worker            shared stores: only verify and enqueue; \`smcp worker\` processes run the jobs
  --concurrency N        jobs run at once here     SMCP_CONCURRENCY default ${DEFAULT_CONCURRENCY}
  --hide-tool-errors     answer a tool's unexpected errors with "the tool failed", not their message
                         (a ToolError's message is always shown)   SMCP_HIDE_TOOL_ERRORS=1
  --max-overdue-runs N   runs of one tool still going past their timeout before its new runs
                         get unavailable                            SMCP_MAX_OVERDUE_RUNS default 32
  --lease-ms N           a running job whose worker stops renewing its lease this long is requeued
                                                   SMCP_LEASE_MS   default ${DEFAULT_LEASE_MS}
  --window-ms N          freshness window, ms      SMCP_WINDOW_MS  default ${DEFAULT_FRESHNESS_MS}
  --workers N            N processes sharing the port (node:cluster); a shared store (not memory)
                                                   SMCP_WORKERS    default 1
  --config PATH          keyring file              SMCP_CONFIG     default .smcp/keyring.json

per client (defaults that one user never meets; per-client overrides in the keyring file):
  --client-rate N/s      sustained request rate per client (also N/m, N/h; off)    default 1000/s
  --client-burst N       requests allowed in a burst on top of the rate            default 2x the rate
  --max-open-jobs N      queued + running jobs per client (0: no limit)            default 1000
  --max-stored-bytes N   bytes of a client's retained jobs (0: no limit)           default 268435456
  --max-held-polls N     long polls (poll_job wait_ms) held per client             default 64

operating:
  --retention-ms N       finished jobs are deleted this long after they end        SMCP_RETENTION_MS default ${DEFAULT_JOB_RETENTION_MS}
  --metrics              serve Prometheus metrics at GET /metrics (no auth: bind --host to a private address)
  --metrics-per-client   label request metrics with client ids
  --log-level LEVEL      fatal, error, warn, info (a line per request), debug, silent   SMCP_LOG_LEVEL default info
  --log-format F         json or pretty                                             default: pretty on a terminal
  --log-buffer-bytes N   log held for a slow reader; past it lines are dropped and counted   default ${DEFAULT_LOG_BUFFER_BYTES}

${MCP_SERVE_HELP}

the HTTP edge (each bounded; see the README's security section):
  --max-connections N    open connections at most; more are refused at once        default ${DEFAULT_MAX_CONNECTIONS}
  --max-in-flight N      requests read or handled at once; more get 503 at once    default ${DEFAULT_MAX_IN_FLIGHT}
                         (requests whose body is still arriving get at most half:
                         bodies that arrive whole always have the rest)
  --max-body-bytes N     largest request body; larger gets 413                     default ${DEFAULT_MAX_MESSAGE_BYTES}
  --body-timeout-ms N    a body not received in time gets a signed bad_envelope    default ${DEFAULT_BODY_TIMEOUT_MS}
  --min-body-rate N      bytes/s a body must keep to after the grace; slower is cut
                         off with a signed bad_envelope (0: off)                   default ${DEFAULT_MIN_BODY_RATE}
  --body-grace-ms N      time a body gets on top of what the rate allows           default ${DEFAULT_BODY_GRACE_MS}
  --max-pending-per-address N
                         unfinished bodies from one address (an IPv6 /64); one
                         more gets a signed 429 rate_limited at once               default ${DEFAULT_MAX_PENDING_PER_ADDRESS}
  --trust-proxy ADDR     a reverse proxy's IP address (repeatable, or a comma list): its
                         requests count under the right-most X-Forwarded-For entry default none
  --headers-timeout-ms N the request head must arrive in time                      default ${DEFAULT_HEADERS_TIMEOUT_MS}
  --keep-alive-ms N      idle keep-alive connections are closed after this         default ${DEFAULT_KEEP_ALIVE_MS}`;

/** The default store: a SQLite file beside the keyring file. */
function defaultStore(keyringFile: string): string {
  return `sqlite:${join(dirname(keyringFile), "smcp.db")}`;
}

/** Options of the commands that run jobs (serve, worker). */
export const JOB_FLAGS = {
  store: { type: "string" },
  tools: { type: "string", multiple: true },
  concurrency: { type: "string" },
  "lease-ms": { type: "string" },
  config: { type: "string" },
  "hide-tool-errors": { type: "boolean" },
  "max-overdue-runs": { type: "string" },
} as const;

/** Client scopes from `--scope ID=SCOPE` flags, over the keyring file's per-client `scopes`. */
function scopesOf(flags: readonly string[], fromFile: ReadonlyMap<string, string[]> | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>(fromFile ?? []);
  const given = new Map<string, string[]>();
  for (const item of flags) {
    const at = item.indexOf("=");
    if (at <= 0) throw new SmcpUsageError(`--scope: "${item.slice(0, 80)}" is not ID=SCOPE (e.g. alice=tools:batch_sum)`);
    const id = item.slice(0, at);
    given.set(id, [...(given.get(id) ?? []), item.slice(at + 1)]);
  }
  for (const [id, list] of given) out.set(id, list);
  return out;
}

/**
 * Whether the reference tutorial's demo tools are served: on when asked
 * (`--demo-tools`), off when refused (`--no-demo-tools`), and otherwise only
 * while the user brings no tools of their own (a first run has something to call).
 */
export function withDemoTools(flags: Flags, ownTools: boolean): boolean {
  if (flags.boolean("demo-tools") && flags.boolean("no-demo-tools")) {
    throw new SmcpUsageError("--demo-tools and --no-demo-tools contradict each other; give one");
  }
  if (flags.boolean("demo-tools")) return true;
  return !flags.boolean("no-demo-tools") && !ownTools;
}

/** `--concurrency`, `--lease-ms`, `--tools` and how tool code is held to account, shared by serve and worker. */
export async function jobSettings(
  flags: Flags,
  env: NodeJS.ProcessEnv,
): Promise<{ concurrency: number; leaseMs: number; tools: Tool[]; hideToolErrors: boolean; maxOverdueRuns: number }> {
  const modules = flags.list("tools");
  const specs = modules.length > 0 ? modules : (env.SMCP_TOOLS?.split(",").filter((s) => s !== "") ?? []);
  return {
    concurrency: parseInteger(
      flags.string("concurrency") ?? env.SMCP_CONCURRENCY ?? String(DEFAULT_CONCURRENCY),
      "--concurrency",
      1,
      10_000,
    ),
    leaseMs: parseInteger(
      flags.string("lease-ms") ?? env.SMCP_LEASE_MS ?? String(DEFAULT_LEASE_MS),
      "--lease-ms",
      100,
      86_400_000,
    ),
    tools: await loadToolModules(specs),
    hideToolErrors: flags.boolean("hide-tool-errors") || env.SMCP_HIDE_TOOL_ERRORS === "1",
    maxOverdueRuns: parseInteger(
      flags.string("max-overdue-runs") ?? env.SMCP_MAX_OVERDUE_RUNS ?? String(DEFAULT_MAX_OVERDUE_RUNS),
      "--max-overdue-runs",
      1,
      100_000,
    ),
  };
}

/** Resolves the server's settings, creating the local keyring file when nothing is configured; undefined after `--help`. */
export async function resolveServeSettings(argv: string[], io: CliIO) {
  const flags = parseCommand(
    {
      name: "serve",
      help: SERVE_HELP,
      options: {
        ...JOB_FLAGS,
        ...MCP_SERVE_FLAGS,
        host: { type: "string" },
        port: { type: "string" },
        "server-id": { type: "string" },
        "server-secret": { type: "string", multiple: true },
        "server-secret-file": { type: "string", multiple: true },
        scope: { type: "string", multiple: true },
        client: { type: "string", multiple: true },
        clients: { type: "string" },
        "clients-from-store": { type: "boolean" },
        alg: { type: "string" },
        "window-ms": { type: "string" },
        "no-worker": { type: "boolean" },
        "no-demo-tools": { type: "boolean" },
        "demo-tools": { type: "boolean" },
        "max-connections": { type: "string" },
        "max-in-flight": { type: "string" },
        "max-body-bytes": { type: "string" },
        "body-timeout-ms": { type: "string" },
        "min-body-rate": { type: "string" },
        "body-grace-ms": { type: "string" },
        "max-pending-per-address": { type: "string" },
        "trust-proxy": { type: "string", multiple: true },
        "headers-timeout-ms": { type: "string" },
        "keep-alive-ms": { type: "string" },
        "client-rate": { type: "string" },
        "client-burst": { type: "string" },
        "max-open-jobs": { type: "string" },
        "max-stored-bytes": { type: "string" },
        "max-held-polls": { type: "string" },
        workers: { type: "string" },
        "retention-ms": { type: "string" },
        metrics: { type: "boolean" },
        "metrics-per-client": { type: "boolean" },
        ...LOG_FLAGS,
      },
    },
    argv,
    io,
  );
  if (!flags) return undefined;
  const env = io.env;
  const path = keyringPath(flags.string("config"), env);
  let file = readKeyringFile(path);
  const host = flags.string("host") ?? env.SMCP_HOST ?? "127.0.0.1";
  const port = parseInteger(flags.string("port") ?? env.SMCP_PORT ?? "8787", "--port", 0, 65535);
  const alg = flags.string("alg");
  if (alg !== undefined && alg !== "hmac" && alg !== "ed25519") {
    throw new SmcpUsageError("--alg must be hmac or ed25519");
  }
  // Secrets as files too (what operators' secret stores mount): read here, never logged or quoted.
  const secretFlags = [
    ...flags.list("server-secret"),
    ...flags.list("server-secret-file").map((p) => secretFile(p, "--server-secret-file")),
  ];
  const envSecret =
    env.SMCP_SERVER_SECRET ??
    (env.SMCP_SERVER_SECRET_FILE !== undefined ? secretFile(env.SMCP_SERVER_SECRET_FILE, "SMCP_SERVER_SECRET_FILE") : undefined);
  let serverSecrets: string[] | undefined =
    secretFlags.length > 0 ? secretFlags : envSecret !== undefined ? [envSecret] : undefined;
  let kid = "default";
  let usesFile = false;
  if (serverSecrets === undefined && file && file.server_secret.length > 0) {
    serverSecrets = file.server_secret;
    kid = file.server_kid ?? kid;
    usesFile = true;
  }
  const clientFlags = flags.list("client");
  const clientsFile = flags.string("clients") ?? env.SMCP_CLIENTS_FILE;
  const fromStore = flags.boolean("clients-from-store");
  let clients =
    clientFlags.length > 0
      ? parseClientList(clientFlags, "--client")
      : env.SMCP_CLIENTS
        ? parseClientList(env.SMCP_CLIENTS.split(","), "SMCP_CLIENTS")
        : file?.clients;
  const serverIdGiven = flags.string("server-id") ?? env.SMCP_SERVER_ID;
  // Tool modules load before anything is written: a failed start leaves nothing behind.
  const jobs = await jobSettings(flags, env);
  let created = false;
  if (serverSecrets === undefined && clients === undefined && clientsFile === undefined && !fromStore) {
    file = createKeyringFile(path, { alg: alg ?? "hmac", ...(serverIdGiven === undefined ? {} : { serverId: serverIdGiven }) });
    created = true;
    usesFile = true;
    serverSecrets = file.server_secret;
    kid = file.server_kid ?? kid;
    clients = file.clients;
  }
  if (serverSecrets === undefined) {
    throw new SmcpUsageError("no server secret: pass --server-secret S or set SMCP_SERVER_SECRET (`smcp keygen` makes one)");
  }
  // With a registry (--clients FILE, the store's), the keyring may name no client: they are all there.
  clients ??= new Map();
  if (clients.size === 0 && clientsFile === undefined && !fromStore) {
    throw new SmcpUsageError("no clients: pass --client ID=SECRET or set SMCP_CLIENTS=id=secret,id2=secret2");
  }
  if (alg === "ed25519" && !serverSecrets.some((s) => isEd25519Secret(s))) {
    throw new SmcpUsageError(
      "--alg ed25519 only chooses the keys of a new keyring file, and the server keys in use have no ed25519-secret:; pass --server-secret ed25519-secret:… or --config NEW_PATH",
    );
  }
  const number = (flag: string, fallback: number, min: number, max: number) =>
    parseInteger(flags.string(flag) ?? String(fallback), `--${flag}`, min, max);
  return {
    path,
    created,
    usesFile,
    host,
    port,
    serverId: serverIdGiven ?? file?.server_id ?? DEFAULT_SERVER_ID,
    serverSecrets,
    kid,
    clients,
    // The keyring file's own entries (all their shapes) when its clients are the ones served.
    clientsFromKeyring: clientFlags.length === 0 && !env.SMCP_CLIENTS && file !== undefined,
    clientsFile: clientsFile === undefined ? undefined : resolve(clientsFile),
    clientsFromStore: fromStore,
    store: flags.string("store") ?? env.SMCP_STORE ?? file?.store ?? defaultStore(path),
    worker: !flags.boolean("no-worker"),
    ...jobs,
    ownTools: jobs.tools.length,
    tools: withDemoTools(flags, jobs.tools.length > 0 || flags.list("mcp-upstream").length > 0)
      ? [...demoTools, ...jobs.tools]
      : jobs.tools,
    mcp: mcpServeSettings(flags),
    windowMs: parseInteger(
      flags.string("window-ms") ?? env.SMCP_WINDOW_MS ?? String(DEFAULT_FRESHNESS_MS),
      "--window-ms",
      1000,
      86_400_000,
    ),
    limits: clientLimits(flags, readClientLimits(path)),
    scopes: scopesOf(flags.list("scope"), usesFile ? file?.scopes : undefined),
    maxHeldPolls: number("max-held-polls", 64, 1, 100_000),
    workers: parseInteger(flags.string("workers") ?? env.SMCP_WORKERS ?? "1", "--workers", 1, 256),
    retentionMs: parseInteger(
      flags.string("retention-ms") ?? env.SMCP_RETENTION_MS ?? String(DEFAULT_JOB_RETENTION_MS),
      "--retention-ms",
      1000,
      365 * 86_400_000,
    ),
    metrics: flags.boolean("metrics"),
    metricsPerClient: flags.boolean("metrics-per-client"),
    log: logSettings(flags, io),
    http: {
      maxConnections: number("max-connections", DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
      maxInFlight: number("max-in-flight", DEFAULT_MAX_IN_FLIGHT, 1, 1_000_000),
      maxBodyBytes: number("max-body-bytes", DEFAULT_MAX_MESSAGE_BYTES, 1024, 64 * 1024 * 1024),
      bodyTimeoutMs: number("body-timeout-ms", DEFAULT_BODY_TIMEOUT_MS, 100, 600_000),
      minBodyRate: number("min-body-rate", DEFAULT_MIN_BODY_RATE, 0, 1024 ** 3),
      bodyGraceMs: number("body-grace-ms", DEFAULT_BODY_GRACE_MS, 0, 600_000),
      maxPendingPerAddress: number("max-pending-per-address", DEFAULT_MAX_PENDING_PER_ADDRESS, 1, 1_000_000),
      trustProxy: trustedProxies(flags.list("trust-proxy")),
      headersTimeoutMs: number("headers-timeout-ms", DEFAULT_HEADERS_TIMEOUT_MS, 100, 600_000),
      keepAliveTimeoutMs: number("keep-alive-ms", DEFAULT_KEEP_ALIVE_MS, 100, 600_000),
    },
  };
}

/** `smcp serve`: runs until SIGTERM/SIGINT. */
export async function serveCommand(argv: string[], io: CliIO): Promise<number> {
  const settings = await resolveServeSettings(argv, io);
  if (!settings) return 0; // --help was printed
  if (settings.workers > 1 && !isClusterWorker()) {
    if (settings.store === "memory") {
      throw new SmcpUsageError(
        "--workers needs a store the processes share (sqlite:PATH, redis:// or postgres://); memory belongs to one process",
      );
    }
    if (settings.created) io.err(`created ${settings.path} (mode 0600): server '${settings.serverId}', client 'local'`);
    return runCluster(settings.workers, io);
  }
  // Checked before anything starts: a refused key configuration leaves nothing behind.
  const keyring = new Keyring({
    serverId: settings.serverId,
    // The label goes on the first key, the one that signs before a client is known.
    serverSecrets: settings.serverSecrets.map((secret, i) => (i === 0 ? { secret, kid: settings.kid } : secret)),
    clients: new Map(),
  });
  const registry = await openClientSources({
    keyringFile: settings.clientsFromKeyring ? settings.path : undefined,
    keys: settings.clients,
    scopes: settings.scopes,
    limits: settings.limits.clients instanceof Map ? settings.limits.clients : new Map(),
    clientsFile: settings.clientsFile,
    store: settings.clientsFromStore ? settings.store : undefined,
  });
  try {
    // Every client is checked against the server's keys now: a refused one stops the start.
    keyring.withClients(new Map([...registry.clients].map(([id, c]) => [id, [...c.keys]])));
    const mcp = await startMcpUpstreams(settings.mcp, settings.tools, io);
    try {
      return await runServer(settings, keyring, registry, mcp.tools, io);
    } finally {
      await mcp.close(); // every way out stops the MCP upstreams
    }
  } finally {
    await registry.close();
  }
}

async function runServer(
  settings: NonNullable<Awaited<ReturnType<typeof resolveServeSettings>>>,
  keyring: Keyring,
  registry: OpenRegistry,
  mcpTools: Tool[],
  io: CliIO,
): Promise<number> {
  let log: Logger | undefined;
  const stores = await openStores(settings.store, {
    retentionMs: settings.retentionMs,
    // Connection errors, once per outage (the connection reports it), into the log once it exists.
    onError: (e) => (log ? log.error({ error: describe(e) }, "store connection lost") : io.err(`smcp: store: ${describe(e)}`)),
  });
  let server: SmcpServer | undefined;
  const observe = createObservability({
    ...settings.log,
    metrics: settings.metrics,
    perClientMetrics: settings.metricsPerClient,
    stores,
    heldPolls: () => server?.heldPolls ?? 0,
  });
  log = observe.logger;
  server = createServer({
    keyring,
    tools: [...settings.tools, ...mcpTools],
    freshnessMs: settings.windowMs,
    runJobs: settings.worker,
    jobConcurrency: settings.concurrency,
    hideToolErrors: settings.hideToolErrors,
    maxOverdueRuns: settings.maxOverdueRuns,
    jobLeaseMs: settings.leaseMs,
    maxMessageBytes: settings.http.maxBodyBytes,
    limits: settings.limits,
    clients: registry.clients,
    longPoll: { perClient: settings.maxHeldPolls },
    sweepEveryMs: Math.min(60_000, Math.max(1000, Math.floor(settings.retentionMs / 4))),
    stores,
    observer: observe.observer,
    onError: (error, ctx) => {
      // Store outages are logged once per outage by the observer, not once per request.
      if (ctx.phase === "store") return;
      log.error({ phase: ctx.phase, tool: ctx.tool, job_id: ctx.jobId, error: describe(error) }, `${ctx.phase} error`);
    },
  });
  // Live changes: the clients file as it changes, the store's version every 250 ms, SIGHUP for all.
  const follower = followRegistry(
    {
      server,
      load: registry.load,
      ...(settings.clientsFile === undefined ? {} : { file: settings.clientsFile }),
      ...(registry.storage ? { version: () => (registry.storage as RegistryStorage).version() } : {}),
      sighup: true,
      onReload: observe.registry,
    },
    registry.version,
  );
  // One tool's forgotten `await` must not stop the server for everyone: logged, counted, survived.
  const unguard = installProcessGuards({ onStray: observe.stray, runningTools: () => server.runs.runningTools() });
  let running: Awaited<ReturnType<typeof serveHttp>>;
  try {
    running = await serveHttp(server, { host: settings.host, port: settings.port, ...settings.http, metrics: observe.metrics });
  } catch (error) {
    unguard();
    await server.close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") throw new SmcpUsageError(`port ${settings.port} is in use; pick another with --port N`);
    throw error;
  }
  // Where it listens goes in .smcp/servers.json under its own id; the keyring file is never rewritten.
  // Only a server that uses this folder's keyring file: its callers are the ones that look here.
  const servers = settings.usesFile ? serversPath(settings.path) : undefined;
  const taken = servers && recordServer(servers, settings.serverId, running.url);
  if (taken) {
    log.warn(
      { server_id: settings.serverId, callers_go_to: taken },
      "another server with this id already listens for this folder's callers; they keep going there (give this one its own --server-id)",
    );
  }
  if (settings.created) {
    const keys = settings.serverSecrets.some((s) => isEd25519Secret(s)) ? "Ed25519 keys" : "HMAC secrets";
    io.err(`created ${settings.path} (mode 0600): server '${settings.serverId}', client 'local', ${keys}`);
    io.err("  call it from this folder:  npx smcp call server_identity");
  }
  log.info(
    {
      server_id: settings.serverId,
      store: redactUrl(settings.store),
      jobs: settings.store === "memory" ? "here" : settings.worker ? "here and in workers" : "workers only (--no-worker)",
      clients: registry.clients.size,
      tools: [...settings.tools, ...mcpTools].map((t) => t.name),
      metrics: settings.metrics ? `${running.origin}/metrics` : undefined,
    },
    `serving ${running.url}`,
  );
  // Listen for the stop signal before saying we are ready: a supervisor may send it as soon as it reads that line.
  const stopping = stopSignal();
  if (isClusterWorker()) reportListening(running.origin);
  else io.out(`listening on ${running.origin}`);
  const signal = await stopping;
  log.info(`${signal}: finishing in-flight requests`);
  armStopDeadline({ signal, env: io.env, log: (message) => log.error(message) });
  follower.close();
  await running.close();
  if (servers) forgetServer(servers, settings.serverId);
  unguard();
  log.info("stopped");
  await observe.close();
  // A cluster worker's channel to the primary would keep it alive: let go of it once stopped.
  if (isClusterWorker()) process.disconnect?.();
  return 0;
}

/** `--trust-proxy` values (repeated, or comma lists): each must be an IP address, or the server does not start. */
export function trustedProxies(values: readonly string[]): string[] {
  const addresses = values.flatMap((v) => v.split(",")).map((v) => v.trim());
  for (const address of addresses) {
    if (isIP(address) === 0) {
      throw new SmcpUsageError(`--trust-proxy must be IP addresses (e.g. 10.0.0.5,::1), not '${address.slice(0, 40)}'`);
    }
  }
  return addresses;
}

/** The per-client limits from flags, over the keyring file's per-client overrides. */
function clientLimits(flags: Flags, perClient: Map<string, ClientLimits>): LimitsOptions {
  const limits: LimitsOptions = { clients: perClient };
  const rate = flags.string("client-rate");
  if (rate !== undefined) limits.rate = parseRate(rate, "--client-rate");
  const burst = flags.string("client-burst");
  if (burst !== undefined) limits.burst = parseInteger(burst, "--client-burst", 0, 1_000_000_000);
  const open = flags.string("max-open-jobs");
  if (open !== undefined) limits.maxOpenJobs = parseInteger(open, "--max-open-jobs", 0, 1_000_000_000);
  const bytes = flags.string("max-stored-bytes");
  if (bytes !== undefined) limits.maxStoredBytes = parseInteger(bytes, "--max-stored-bytes", 0, Number.MAX_SAFE_INTEGER);
  return limits;
}

/** `--log-level`, `--log-format` and `--log-buffer-bytes`, shared by serve and worker. */
export const LOG_FLAGS = {
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "log-buffer-bytes": { type: "string" },
} as const;

const LOG_LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** The log settings from flags and environment: JSON lines, or pretty ones on a terminal. */
export function logSettings(flags: Flags, io: CliIO): { logLevel: string; pretty: boolean; logBufferBytes: number } {
  const logLevel = flags.string("log-level") ?? io.env.SMCP_LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.has(logLevel)) throw new SmcpUsageError(`--log-level must be one of ${[...LOG_LEVELS].join(", ")}`);
  const format = flags.string("log-format") ?? (io.tty ? "pretty" : "json");
  if (format !== "json" && format !== "pretty") throw new SmcpUsageError("--log-format must be json or pretty");
  const logBufferBytes = parseInteger(
    flags.string("log-buffer-bytes") ?? io.env.SMCP_LOG_BUFFER_BYTES ?? String(DEFAULT_LOG_BUFFER_BYTES),
    "--log-buffer-bytes",
    4096,
    1024 ** 3,
  );
  return { logLevel, pretty: format === "pretty", logBufferBytes };
}

/** An error's message, with any URL password removed. */
export function describe(error: unknown): string {
  return redactUrl(error instanceof Error ? error.message : String(error));
}
