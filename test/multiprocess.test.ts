import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, beforeEach, describe, it } from "node:test";
import { Redis } from "ioredis";
import { connectRedis, parseRedisUrl } from "../src/backends/redis/connection.js";
import { runCli } from "../src/cli/run.js";
import { createClient, httpTransport, type JobStore, parseLossless, type SmcpClient, SmcpError } from "../src/index.js";
import { PostgresConnection, PostgresJobStore, parsePostgresUrl } from "../src/postgres.js";
import { RedisJobStore } from "../src/redis.js";
import { SqliteJobStore } from "../src/sqlite.js";
import { captureIO } from "./cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, signedEnvelope, until } from "./helpers.js";
import { PG_URL, Schemas, sql, storeUrl } from "./postgres-helpers.js";
import { type Child, freePort, start, startCli } from "./process-helpers.js";
import { type LocalCluster, startCluster } from "./redis-cluster-helpers.js";
import { deleteKeys, REDIS_URL, redisReady } from "./redis-helpers.js";

const KEYS = ["--server-id", SERVER_ID, "--server-secret", SERVER_SECRET, "--client", `${CLIENT_ID}=${CLIENT_SECRET}`];
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
});

async function serve(store: string, ...extra: string[]): Promise<{ child: Child; url: string; client: SmcpClient }> {
  const child = await startCli(["serve", "--port", "0", "--store", store, ...KEYS, ...extra], {
    SMCP_CONFIG: "/nonexistent/keyring.json",
  });
  children.push(child);
  const url = `${child.line.replace(/^listening on /, "")}/mcp`;
  const client = createClient({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    serverId: SERVER_ID,
    serverSecret: SERVER_SECRET,
    transport: httpTransport(url),
  });
  return { child, url, client };
}

async function worker(store: string, ...extra: string[]): Promise<Child> {
  const child = await startCli(["worker", "--store", store, ...extra], { SMCP_CONFIG: "/nonexistent/keyring.json" });
  children.push(child);
  return child;
}

const envelope = (tool: string, args: Record<string, unknown>) => signedEnvelope({ tool, args });

async function post(
  url: string,
  body: string,
): Promise<{ status: number; code: string | undefined; result: Record<string, unknown> | null }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  const message = parseLossless(await response.text()).value as { result: Record<string, unknown> | null };
  return { status: response.status, code: message.result?.code as string | undefined, result: message.result };
}

async function waitForState(client: SmcpClient, jobId: string, state: string, timeoutMs = 20_000): Promise<void> {
  await until(
    async () => {
      const polled = await client.poll(jobId);
      return polled.result?.state === state || polled.status === state;
    },
    timeoutMs,
    `job ${state}`,
  );
}

/** A shared store for the replica tests: each test gets a fresh one (workers left from one test must not take another's jobs). */
interface SharedStore {
  /** The store URL of a fresh, empty store. */
  fresh(): Promise<string>;
  /** A job store on that URL, as the test inspects it. */
  open(url: string): Promise<{ jobs: JobStore; close(): Promise<void> }>;
  /** Deletes what the tests stored. */
  cleanup(): Promise<void>;
}

/** API replicas and workers as separate processes on one shared store (Redis, PostgreSQL). */
function replicasAndWorkers(name: string, shared: SharedStore): void {
  describe(`replicas and workers on ${name} (separate processes)`, () => {
    let store = "";
    beforeEach(async () => {
      store = await shared.fresh();
    });
    after(async () => {
      for (const child of children) await child.stop("SIGKILL");
      await shared.cleanup();
    });
    const inspect = async <T>(look: (jobs: JobStore) => Promise<T>): Promise<T> => {
      const opened = await shared.open(store);
      try {
        return await look(opened.jobs);
      } finally {
        await opened.close();
      }
    };

    it("a job started on replica A is polled to done on replica B; a replay is refused by the other replica; copies run once", async () => {
      const [a, b] = await Promise.all([serve(store, "--no-worker"), serve(store, "--no-worker")]);
      await worker(store);
      const { job_id } = (await a.client.call("start_long_task", { seconds: 1, payload: { from: "A" } })) as { job_id: string };
      await until(async () => (await b.client.poll(job_id)).status === "done", 20_000, "done on B");
      assert.deepEqual((await b.client.poll(job_id)).result, { from: "A" });

      const once = envelope("batch_sum", { numbers: [1, 2] });
      assert.equal((await post(a.url, once)).status, 200);
      const replayed = await post(b.url, once);
      assert.equal(replayed.status, 401);
      assert.equal(replayed.code, "replay");

      const copies = envelope("start_long_task", { seconds: 1, payload: { copy: true } });
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => post(i % 2 ? a.url : b.url, copies)));
      const accepted = answers.filter((r) => r.status === 200);
      assert.equal(accepted.length, 1, JSON.stringify(answers.map((r) => r.code)));
      assert.ok(answers.filter((r) => r.status !== 200).every((r) => r.code === "replay"));
      const jobs = await inspect((store) => store.list({ clientId: CLIENT_ID }));
      assert.equal(
        jobs.filter((j) => (j.args.payload as { copy?: boolean } | undefined)?.copy).length,
        1,
        "one job for 40 copies",
      );
    });

    it("a cancel on one replica aborts the job on the worker process", async () => {
      const [a, b] = await Promise.all([serve(store, "--no-worker"), serve(store, "--no-worker")]);
      await worker(store);
      const { job_id } = (await a.client.call("start_long_task", { seconds: 20, payload: {} })) as { job_id: string };
      await waitForState(a.client, job_id, "running");
      assert.equal((await b.client.cancel(job_id)).state, "cancelled");
      // The worker lets go of it (its abort signal fired) well before the 20 s job would end.
      await inspect((jobs) => until(async () => (await jobs.get(job_id))?.workerId === null, 5000, "the worker to drop the job"));
      assert.equal((await a.client.poll(job_id)).result?.code, "cancelled");
    });

    it("kill -9 the worker mid-job: another worker finishes it (at-least-once)", async () => {
      const a = await serve(store, "--no-worker");
      const first = await worker(store, "--lease-ms", "1000");
      const { job_id } = (await a.client.call("start_long_task", { seconds: 2, payload: { survived: true } })) as {
        job_id: string;
      };
      await until(
        async () => ((await a.client.poll(job_id)).result?.progress as { done?: number } | null)?.done === 1,
        20_000,
        "progress",
      );
      await first.stop("SIGKILL");
      await worker(store, "--lease-ms", "1000");
      await until(async () => (await a.client.poll(job_id)).status === "done", 30_000, "done after the crash");
      assert.deepEqual((await a.client.poll(job_id)).result, { survived: true });
      const job = await inspect((jobs) => jobs.get(job_id));
      assert.equal(job?.attempts, 2);
    });
  });
}

// Each test gets its own prefix.
const redisRun = `smcp-test-${randomUUID().slice(0, 8)}:`;
replicasAndWorkers("Redis", {
  fresh: async () => `${REDIS_URL}?prefix=${redisRun}${randomUUID().slice(0, 8)}:`,
  open: async (url) => {
    const redis = new Redis(REDIS_URL);
    const prefix = new URL(url).searchParams.get("prefix") ?? "";
    return { jobs: new RedisJobStore(redis, { prefix }), close: async () => redis.disconnect() };
  },
  cleanup: () => deleteKeys(redisRun),
});

// The same, with workers claiming from the Redis job store instead of BullMQ (?queue=store).
replicasAndWorkers("Redis, the store as the queue", {
  fresh: async () => `${REDIS_URL}?prefix=${redisRun}${randomUUID().slice(0, 8)}:&queue=store`,
  open: async (url) => {
    const redis = new Redis(REDIS_URL);
    const prefix = new URL(url).searchParams.get("prefix") ?? "";
    return { jobs: new RedisJobStore(redis, { prefix }), close: async () => redis.disconnect() };
  },
  cleanup: () => deleteKeys(redisRun),
});

// A local 3+3 cluster, started for the first test that asks; each test gets its own prefix (its own hash tag).
let localCluster: LocalCluster | undefined;
after(() => localCluster?.stop());
replicasAndWorkers("a Redis Cluster", {
  fresh: async () => {
    localCluster ??= await startCluster();
    return `${localCluster.url}/?prefix=t${randomUUID().slice(0, 8)}`;
  },
  open: async (url) => {
    const target = parseRedisUrl(url);
    const redis = await connectRedis(target);
    return { jobs: new RedisJobStore(redis, { prefix: target.prefix }), close: async () => redis.disconnect() };
  },
  cleanup: async () => {},
});

// Each test gets its own schema (the first process to start creates it).
const pgSchemas = new Schemas();
replicasAndWorkers("PostgreSQL", {
  fresh: async () => storeUrl(pgSchemas.name()),
  open: async (url) => {
    const { schema } = parsePostgresUrl(url);
    const connection = await PostgresConnection.open(PG_URL, { poolMax: 1 });
    return { jobs: new PostgresJobStore(connection, { schema, closeConnection: true }), close: () => connection.close() };
  },
  cleanup: () => pgSchemas.dropAll(),
});

describe("SQLite: restart mid-job", () => {
  it("a job running when the server died is run again at the next start, never left running", async () => {
    const db = join(mkdtempSync(join(tmpdir(), "smcp-restart-")), "smcp.db");
    const first = await serve(`sqlite:${db}`, "--lease-ms", "1000");
    const { job_id } = (await first.client.call("start_long_task", { seconds: 2, payload: { restarted: true } })) as {
      job_id: string;
    };
    await until(
      async () => ((await first.client.poll(job_id)).result?.progress as { done?: number } | null)?.done === 1,
      20_000,
      "progress",
    );
    await first.child.stop("SIGKILL");
    const store = new SqliteJobStore(db);
    assert.equal((await store.get(job_id))?.state, "running", "left running by the dead process");
    const second = await serve(`sqlite:${db}`, "--lease-ms", "1000");
    await until(async () => (await second.client.poll(job_id)).status === "done", 30_000, "done after the restart");
    assert.deepEqual((await second.client.poll(job_id)).result, { restarted: true });
    assert.equal((await store.get(job_id))?.attempts, 2);
    await store.close();
  });
});

describe("SQLite: two servers on one file (group commit)", () => {
  it("a replay is refused by the other process; of copies sent to both at once, exactly one is run", async () => {
    const db = join(mkdtempSync(join(tmpdir(), "smcp-replay-")), "smcp.db");
    const [a, b] = await Promise.all([serve(`sqlite:${db}`), serve(`sqlite:${db}`)]);
    // The answer from A leaves only once the nonce is committed: B, reading the file, refuses the same envelope.
    for (let k = 0; k < 20; k++) {
      const once = envelope("batch_sum", { numbers: [k] });
      const first = await post(k % 2 ? a.url : b.url, once);
      assert.equal(first.status, 200);
      const replayed = await post(k % 2 ? b.url : a.url, once);
      assert.equal(replayed.code, "replay");
    }
    // Copies of one envelope, and of many, to both processes at once: each envelope runs exactly once.
    const bodies = Array.from({ length: 30 }, (_, k) => envelope("batch_sum", { numbers: [k] }));
    const copies = bodies.flatMap((body, k) => [a, b, a, b].map((server) => ({ k, answer: post(server.url, body) })));
    const answers = await Promise.all(copies.map(async ({ k, answer }) => ({ k, ...(await answer) })));
    for (let k = 0; k < bodies.length; k++) {
      const mine = answers.filter((x) => x.k === k);
      assert.equal(mine.filter((x) => x.status === 200).length, 1, `envelope ${k}`);
      assert.ok(mine.filter((x) => x.status !== 200).every((x) => x.code === "replay"));
    }
  });
});

describe("Redis down: fail closed, recover without a restart", () => {
  it("answers 503 unavailable while Redis is down, executes nothing, accepts no replay, and resumes by itself", async () => {
    const port = await freePort();
    const redisArgs = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    // Our own Redis, so stopping it does not disturb anything else; it prints its banner on stdout.
    let redis = await start("redis-server", redisArgs);
    await redisReady(port);
    children.push(redis);
    const a = await serve(`redis://127.0.0.1:${port}/0`);
    assert.deepEqual(await a.client.call("batch_sum", { numbers: [1] }), { count: 1, total: 1 });
    const seen = envelope("batch_sum", { numbers: [2] });
    assert.equal((await post(a.url, seen)).status, 200);

    await redis.stop("SIGTERM");
    for (const body of [
      envelope("batch_sum", { numbers: [3] }),
      envelope("start_long_task", { seconds: 1, payload: {} }),
      seen,
    ]) {
      const answer = await post(a.url, body);
      assert.equal(answer.status, 503);
      assert.equal(answer.code, "unavailable");
    }
    await assert.rejects(
      a.client.call("batch_sum", { numbers: [1] }),
      (e: unknown) => e instanceof SmcpError && e.code === "unavailable",
    );

    redis = await start("redis-server", redisArgs);

    await redisReady(port);
    children.push(redis);
    await until(
      async () => {
        try {
          return (await a.client.call("batch_sum", { numbers: [4] })).total === 4;
        } catch {
          return false;
        }
      },
      15_000,
      "service to resume",
    );
    const { job_id } = (await a.client.call("start_long_task", { seconds: 1, payload: { after: "outage" } })) as {
      job_id: string;
    };
    await until(async () => (await a.client.poll(job_id)).status === "done", 60_000, "a job after the outage");
    // One log line when the outage began and one when it ended, not one per refused request.
    const messages = a.child
      .stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.equal(messages.filter((m) => m.startsWith("store unavailable")).length, 1, "the outage was logged once");
    assert.equal(messages.filter((m) => m === "store available again").length, 1, "the recovery was logged once");
    assert.doesNotMatch(a.child.stderr(), new RegExp(SERVER_SECRET));
  });
});

describe("PostgreSQL: restart mid-job, and down (sessions cut, logins refused)", () => {
  const schemas = new Schemas();
  after(async () => {
    for (const child of children) await child.stop("SIGKILL");
    await schemas.dropAll();
  });

  it("a job running when the server died is run again at the next start, at once (its pid is gone), never left running", async () => {
    const schema = schemas.name();
    const lease = ["--lease-ms", "600000"]; // ten minutes: only recovery at start can explain a prompt rerun
    const first = await serve(storeUrl(schema), ...lease);
    const { job_id } = (await first.client.call("start_long_task", { seconds: 2, payload: { restarted: true } })) as {
      job_id: string;
    };
    await until(
      async () => ((await first.client.poll(job_id)).result?.progress as { done?: number } | null)?.done === 1,
      20_000,
      "progress",
    );
    await first.child.stop("SIGKILL");
    const connection = await PostgresConnection.open(PG_URL, { poolMax: 1 });
    const jobs = new PostgresJobStore(connection, { schema, closeConnection: true });
    try {
      assert.equal((await jobs.get(job_id))?.state, "running", "left running by the dead process");
      const second = await serve(storeUrl(schema), ...lease);
      await until(async () => (await second.client.poll(job_id)).status === "done", 30_000, "done after the restart");
      assert.deepEqual((await second.client.poll(job_id)).result, { restarted: true });
      assert.equal((await jobs.get(job_id))?.attempts, 2);
    } finally {
      await jobs.close();
    }
  });

  it("answers 503 unavailable while PostgreSQL refuses, executes nothing, accepts no replay, and resumes by itself", async () => {
    // A role of its own: refusing its logins and cutting its sessions touches nobody else's.
    const role = `smcp_down_${randomUUID().slice(0, 8)}`;
    const schema = schemas.name();
    await sql(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.query(`CREATE SCHEMA ${schema} AUTHORIZATION ${role}`);
    });
    const url = new URL(PG_URL);
    url.username = role;
    try {
      const a = await serve(`${url.toString()}?schema=${schema}&pool_max=3`);
      assert.deepEqual(await a.client.call("batch_sum", { numbers: [1] }), { count: 1, total: 1 });
      const seen = envelope("batch_sum", { numbers: [2] });
      assert.equal((await post(a.url, seen)).status, 200);

      await sql(async (c) => {
        await c.query(`ALTER ROLE ${role} NOLOGIN`);
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [role]);
      });
      for (const body of [
        envelope("batch_sum", { numbers: [3] }),
        envelope("start_long_task", { seconds: 1, payload: {} }),
        seen,
      ]) {
        const answer = await post(a.url, body);
        assert.equal(answer.status, 503);
        assert.equal(answer.code, "unavailable");
      }

      await sql((c) => c.query(`ALTER ROLE ${role} LOGIN`));
      await until(
        async () => {
          try {
            return (await a.client.call("batch_sum", { numbers: [4] })).total === 4;
          } catch {
            return false;
          }
        },
        15_000,
        "service to resume",
      );
      assert.equal((await post(a.url, seen)).code, "replay", "a nonce from before the outage is still held");
      const { job_id } = (await a.client.call("start_long_task", { seconds: 1, payload: { after: "outage" } })) as {
        job_id: string;
      };
      await until(async () => (await a.client.poll(job_id)).status === "done", 60_000, "a job after the outage");
      const messages = a.child
        .stderr()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      assert.equal(messages.filter((m) => m.startsWith("store unavailable")).length, 1, "the outage was logged once");
      assert.equal(messages.filter((m) => m === "store available again").length, 1, "the recovery was logged once");
      assert.doesNotMatch(a.child.stderr(), new RegExp(SERVER_SECRET));
    } finally {
      for (const child of children) await child.stop("SIGKILL");
      await sql(async (c) => {
        await c.query(`ALTER ROLE ${role} LOGIN`);
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [role]);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    }
  });
});

describe("smcp serve --workers N (node:cluster)", () => {
  it("N processes behind one port share a SQLite store: calls and jobs answer, SIGTERM stops them all", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smcp-cluster-"));
    const { child, client } = await serve(`sqlite:${join(dir, "smcp.db")}`, "--workers", "2", "--log-level", "warn");
    const pids = new Set<number>();
    // Each answer names the process that ran the job; two processes share the work.
    const { job_id } = (await client.call("start_long_task", { seconds: 1, payload: { n: 1 } })) as { job_id: string };
    assert.deepEqual(await resultOfWait(client, job_id), { n: 1 });
    for (let i = 0; i < 20; i++) assert.deepEqual(await client.call("batch_sum", { numbers: [i] }), { count: 1, total: i });
    for (const line of execFileSync("ps", ["-o", "pid=", "--ppid", String(child.process.pid)], { encoding: "utf8" }).split(
      "\n",
    )) {
      if (line.trim() !== "") pids.add(Number(line));
    }
    assert.equal(pids.size, 2, "two worker processes");
    assert.equal(await child.stop("SIGTERM"), 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), "every worker process has exited");
  });

  it("N processes share a PostgreSQL schema (the first start creates it, once): calls and a job answer, SIGTERM stops them all", async () => {
    const schemas = new Schemas();
    try {
      const { child, client } = await serve(storeUrl(schemas.name(), 2), "--workers", "2", "--log-level", "warn");
      const { job_id } = (await client.call("start_long_task", { seconds: 1, payload: { n: 2 } })) as { job_id: string };
      assert.deepEqual(await resultOfWait(client, job_id), { n: 2 });
      for (let i = 0; i < 10; i++) assert.deepEqual(await client.call("batch_sum", { numbers: [i] }), { count: 1, total: i });
      assert.equal(await child.stop("SIGTERM"), 0);
    } finally {
      await schemas.dropAll();
    }
  });

  it("refuses a memory store, naming the fix", async () => {
    const io = captureIO({ SMCP_CONFIG: "/nonexistent/keyring.json" });
    const code = await runCli(["serve", "--port", "0", "--store", "memory", "--workers", "2", ...KEYS], io);
    assert.equal(code, 2);
    assert.match(io.errText(), /--workers needs a store the processes share/);
  });
});

async function resultOfWait(client: SmcpClient, jobId: string): Promise<unknown> {
  const final = await client.waitForJob(jobId, { timeoutMs: 20_000 });
  return final.result;
}
