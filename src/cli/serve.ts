import { dirname, join } from "node:path";
import { SmcpUsageError } from "../protocol/errors.js";
import { createServer } from "../server/core.js";
import { serveHttp } from "../server/http.js";
import { openStores } from "../server/stores.js";
import { redactUrl } from "../util/redact.js";
import { type Flags, parseCommand } from "./args.js";
import { createKeyringFile, keyringPath, parseClientList, parseInteger, readKeyringFile } from "./config.js";
import { type CliIO, stopSignal } from "./io.js";

/** `smcp serve --help`. */
export const SERVE_HELP = `usage: smcp serve [options]

Runs an mcp/0.1 server over HTTP (POST /mcp, GET /healthz) until SIGTERM or
SIGINT, then shuts down gracefully. With no secrets given anywhere, creates
.smcp/keyring.json (mode 0600) with a random server secret and a client
'local', which \`smcp call\` then reads.

options (flags win over environment, environment over the keyring file):
  --host HOST            listen address            SMCP_HOST       default 127.0.0.1
  --port N               port (0: any free one)    SMCP_PORT       default 8787
  --server-id ID         this server's id          SMCP_SERVER_ID  default smcp-local
  --server-secret S      signing secret (>= 16 B)  SMCP_SERVER_SECRET
  --client ID=SECRET     a client (repeatable)     SMCP_CLIENTS=id=secret,id2=secret2
  --store URL            memory | sqlite:PATH | redis://HOST:PORT[/DB][?prefix=P]
                                                   SMCP_STORE      default sqlite:.smcp/smcp.db
  --no-worker            redis: enqueue only; \`smcp worker\` processes run the jobs
  --concurrency N        jobs run at once here     SMCP_CONCURRENCY default 32
  --lease-ms N           a running job whose worker stops renewing its lease this long is requeued
                                                   SMCP_LEASE_MS   default 30000
  --window-ms N          freshness window, ms      SMCP_WINDOW_MS  default 300000
  --config PATH          keyring file              SMCP_CONFIG     default .smcp/keyring.json`;

/** The default store: a SQLite file beside the keyring file. */
function defaultStore(keyringFile: string): string {
  return `sqlite:${join(dirname(keyringFile), "smcp.db")}`;
}

/** `--concurrency` and `--lease-ms`, shared by serve and worker. */
export function jobSettings(flags: Flags, env: NodeJS.ProcessEnv): { concurrency: number; leaseMs: number } {
  return {
    concurrency: parseInteger(flags.string("concurrency") ?? env.SMCP_CONCURRENCY ?? "32", "--concurrency", 1, 10_000),
    leaseMs: parseInteger(flags.string("lease-ms") ?? env.SMCP_LEASE_MS ?? "30000", "--lease-ms", 100, 86_400_000),
  };
}

/** Resolves the server's settings, creating the local keyring file when nothing is configured; undefined after `--help`. */
export function resolveServeSettings(argv: string[], io: CliIO) {
  const flags = parseCommand(
    {
      name: "serve",
      help: SERVE_HELP,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        "server-id": { type: "string" },
        "server-secret": { type: "string" },
        client: { type: "string", multiple: true },
        store: { type: "string" },
        "window-ms": { type: "string" },
        config: { type: "string" },
        "no-worker": { type: "boolean" },
        concurrency: { type: "string" },
        "lease-ms": { type: "string" },
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
  let serverSecret = flags.string("server-secret") ?? env.SMCP_SERVER_SECRET;
  let kid = "default";
  if (serverSecret === undefined && file) {
    serverSecret = file.server_secret;
    kid = file.server_kid ?? kid;
  }
  const clientFlags = flags.list("client");
  let clients =
    clientFlags.length > 0
      ? parseClientList(clientFlags, "--client")
      : env.SMCP_CLIENTS
        ? parseClientList(env.SMCP_CLIENTS.split(","), "SMCP_CLIENTS")
        : file?.clients;
  const serverIdGiven = flags.string("server-id") ?? env.SMCP_SERVER_ID;
  let created = false;
  if (serverSecret === undefined && clients === undefined) {
    file = createKeyringFile(path, { host, port, ...(serverIdGiven === undefined ? {} : { serverId: serverIdGiven }) });
    created = true;
    serverSecret = file.server_secret;
    kid = file.server_kid ?? kid;
    clients = file.clients;
  }
  if (serverSecret === undefined) {
    throw new SmcpUsageError("no server secret: pass --server-secret S or set SMCP_SERVER_SECRET (`smcp keygen` makes one)");
  }
  if (!clients || clients.size === 0) {
    throw new SmcpUsageError("no clients: pass --client ID=SECRET or set SMCP_CLIENTS=id=secret,id2=secret2");
  }
  return {
    path,
    created,
    host,
    port,
    serverId: serverIdGiven ?? file?.server_id ?? "smcp-local",
    serverSecret,
    kid,
    clients,
    store: flags.string("store") ?? env.SMCP_STORE ?? file?.store ?? defaultStore(path),
    worker: !flags.boolean("no-worker"),
    ...jobSettings(flags, env),
    windowMs: parseInteger(flags.string("window-ms") ?? env.SMCP_WINDOW_MS ?? "300000", "--window-ms", 1000, 86_400_000),
  };
}

/** `smcp serve`: runs until SIGTERM/SIGINT. */
export async function serveCommand(argv: string[], io: CliIO): Promise<number> {
  const settings = resolveServeSettings(argv, io);
  if (!settings) return 0; // --help was printed
  const stores = await openStores(settings.store, {
    worker: settings.worker,
    onError: (e) => io.err(`smcp: store: ${describe(e)}`),
  });
  const server = createServer({
    keyring: {
      serverId: settings.serverId,
      serverSecrets: { secret: settings.serverSecret, kid: settings.kid },
      clients: settings.clients,
    },
    freshnessMs: settings.windowMs,
    jobConcurrency: settings.concurrency,
    jobLeaseMs: settings.leaseMs,
    jobStore: stores.jobStore,
    nonceStore: stores.nonceStore,
    ...(stores.jobQueue ? { jobQueue: stores.jobQueue } : {}),
    onError: (error, ctx) => {
      const where = ctx.tool ? ` in '${ctx.tool}'` : "";
      io.err(`smcp: ${ctx.phase} error${where}: ${describe(error)}`);
    },
  });
  let running: Awaited<ReturnType<typeof serveHttp>>;
  try {
    running = await serveHttp(server, { host: settings.host, port: settings.port });
  } catch (error) {
    await server.close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") throw new SmcpUsageError(`port ${settings.port} is in use; pick another with --port N`);
    throw error;
  }
  if (settings.created) {
    io.err(`created ${settings.path} (mode 0600): server '${settings.serverId}', client 'local'`);
    io.err("  call it from this folder:  npx smcp call server_identity");
  }
  const worker = settings.store.startsWith("redis") ? (settings.worker ? ", with a worker" : ", API only (--no-worker)") : "";
  io.err(`server '${settings.serverId}', store ${redactUrl(settings.store)}${worker}, ${settings.clients.size} client(s)`);
  io.out(`listening on ${running.origin}`);
  const signal = await stopSignal();
  io.err(`${signal}: finishing in-flight requests`);
  await running.close();
  io.err("stopped");
  return 0;
}

/** An error's message, with any URL password removed. */
export function describe(error: unknown): string {
  return redactUrl(error instanceof Error ? error.message : String(error));
}
