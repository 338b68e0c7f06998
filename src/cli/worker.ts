import { SmcpUsageError } from "../protocol/errors.js";
import { openStores } from "../server/stores.js";
import { createWorker } from "../server/worker.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { keyringPath, readKeyringFile } from "./config.js";
import { type CliIO, stopSignal } from "./io.js";
import { describe, jobSettings } from "./serve.js";

/** `smcp worker --help`. */
export const WORKER_HELP = `usage: smcp worker --store redis://HOST:PORT[/DB][?prefix=P] [options]

Executes the jobs that API replicas (\`smcp serve --no-worker\`) enqueue, until
SIGTERM or SIGINT; then its running jobs go back to the queue for another
worker. A worker that dies mid-job has its jobs picked up by another worker
once their lease lapses (at-least-once), or failed once their attempts are spent.

  --store URL            the shared store (redis://... or sqlite:PATH)   SMCP_STORE
  --server-id ID         the server id job handlers see                  SMCP_SERVER_ID
  --concurrency N        jobs run at once                                SMCP_CONCURRENCY default 32
  --lease-ms N           lease of a running job                          SMCP_LEASE_MS    default 30000
  --config PATH          keyring file (for the store and server id)      SMCP_CONFIG`;

/** `smcp worker`. */
export async function workerCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "worker",
      help: WORKER_HELP,
      options: {
        store: { type: "string" },
        "server-id": { type: "string" },
        concurrency: { type: "string" },
        "lease-ms": { type: "string" },
        config: { type: "string" },
      },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const file = readKeyringFile(keyringPath(flags.string("config"), io.env));
  const store = flags.string("store") ?? io.env.SMCP_STORE ?? file?.store;
  if (!store) throw new SmcpUsageError("missing store: pass --store redis://HOST:PORT or set SMCP_STORE");
  if (store === "memory")
    throw new SmcpUsageError("a worker needs a shared store: --store redis://HOST:PORT (memory jobs live in the API process)");
  const { concurrency, leaseMs } = jobSettings(flags, io.env);
  const stores = await openStores(store, { worker: true, onError: (e) => io.err(`smcp: store: ${describe(e)}`) });
  const serverId = flags.string("server-id") ?? io.env.SMCP_SERVER_ID ?? file?.server_id;
  const worker = createWorker({
    stores,
    concurrency,
    leaseMs,
    ...(serverId ? { serverId } : {}),
    onError: (e) => io.err(`smcp: job error: ${describe(e)}`),
  });
  io.out(`worker ${worker.workerId} on ${redactUrl(store)}`);
  const signal = await stopSignal();
  io.err(`${signal}: handing running jobs back to the queue`);
  await worker.close();
  io.err("stopped");
  return 0;
}
