/**
 * A real Redis Cluster on loopback for the tests: three masters and three
 * replicas (`redis-server --cluster-enabled yes`, `redis-cli --cluster
 * create`), on free ports ≤ 55535 (each node's bus is its port + 10000),
 * in a folder of its own; stopped and removed by `stop()`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { until } from "./helpers.js";
import { type Child, freePort, start } from "./process-helpers.js";
import { redisReady } from "./redis-helpers.js";

const run = promisify(execFile);

/** A running local cluster. */
export interface LocalCluster {
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` (seeds: the first three nodes). */
  url: string;
  ports: number[];
  /** The port of the master serving a key's slot now. */
  masterOf(key: string): Promise<number>;
  /** Kills a node at once (SIGKILL: no goodbye to the cluster). */
  kill(port: number): Promise<void>;
  /** Resolves once every live node reports `cluster_state:ok` and agrees who serves the key. */
  healthy(key?: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port ≤ 55535 whose bus port (+10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = await freePort();
    if (port > 55_535 || taken.has(port) || taken.has(port + 10_000)) continue;
    if (await portFree(port + 10_000)) return port;
  }
  throw new Error("no free port pair for a cluster node");
}

async function call(port: number, ...command: string[]): Promise<unknown> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return await redis.call(command[0] as string, ...command.slice(1));
  } finally {
    redis.disconnect();
  }
}
const ask = async (port: number, ...command: string[]) => String(await call(port, ...command));

/** Starts three masters and three replicas; resolves once the cluster serves every slot. */
export async function startCluster(options: { nodeTimeoutMs?: number } = {}): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), "smcp-cluster-"));
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) {
    const port = await clusterPort(taken);
    taken.add(port);
    taken.add(port + 10_000);
    ports.push(port);
  }
  const nodes = new Map<number, Child>();
  const dead = new Set<number>();
  const stop = async () => {
    for (const child of nodes.values()) await child.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"];
      args.push(
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        String(options.nodeTimeoutMs ?? 1000),
      );
      args.push("--save", "", "--appendonly", "no", "--dir", dir);
      nodes.set(port, await start("redis-server", args));
    }
    for (const port of ports) await redisReady(port);
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  const masterOf = async (key: string): Promise<number> => {
    const live = ports.find((p) => !dead.has(p)) as number;
    const slot = Number(await ask(live, "CLUSTER", "KEYSLOT", key));
    const slots = (await call(live, "CLUSTER", "SLOTS")) as [number, number, [string, number]][];
    const range = slots.find(([from, to]) => from <= slot && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return range[2][1];
  };
  const cluster: LocalCluster = {
    url: `redis+cluster://${ports
      .slice(0, 3)
      .map((p) => `127.0.0.1:${p}`)
      .join(",")}`,
    ports,
    masterOf,
    async kill(port) {
      dead.add(port);
      await nodes.get(port)?.stop("SIGKILL");
    },
    async healthy(key = "smcp", timeoutMs = 30_000) {
      await until(
        async () => {
          for (const port of ports) {
            if (dead.has(port)) continue;
            const info = await ask(port, "CLUSTER", "INFO").catch(() => "");
            if (!info.includes("cluster_state:ok")) return false;
          }
          const master = await masterOf(key).catch(() => undefined);
          if (master === undefined || dead.has(master)) return false;
          // Every live replica has synced with its master: only then can it be promoted in a failover.
          for (const port of ports) {
            if (dead.has(port)) continue;
            const replication = await ask(port, "INFO", "replication").catch(() => "");
            if (replication.includes("role:slave") && !replication.includes("master_link_status:up")) return false;
          }
          return true;
        },
        timeoutMs,
        "the cluster to serve every slot",
      );
    },
    stop,
  };
  await cluster.healthy();
  return cluster;
}
