// The PostgreSQL stores against the real server (PG_URL): the job-store, tenancy, replay-cache, server-job
// and long-poll conformance suites every store passes, and what is PostgreSQL's own: migrations, the
// schema a non-superuser gets, NOTIFY across connections, and failing closed when connections are cut.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import pg from "pg";
import { runCli } from "../src/cli/run.js";
import { demoTools, MemoryJobStore, MemoryNonceStore, type ServerOptions, SmcpError } from "../src/index.js";
import type { RateLimiterFactory } from "../src/jobs/limiter.js";
import {
  currentVersion,
  MIGRATIONS,
  migrate,
  migrationSql,
  openPostgresStores,
  PostgresConnection,
  PostgresJobQueue,
  PostgresJobStore,
  PostgresNonceStore,
  parsePostgresUrl,
  SCHEMA_VERSION,
} from "../src/postgres.js";
import { openStores } from "../src/stores.js";
import { captureIO } from "./cli-helpers.js";
import { jobStoreConformance } from "./conformance/jobstore.js";
import { longPollConformance } from "./conformance/longpoll.js";
import { nonceStoreConformance } from "./conformance/noncestore.js";
import { serverJobConformance } from "./conformance/serverjobs.js";
import { tenancyConformance } from "./conformance/tenancy.js";
import { pair, signedEnvelope, spyTool, until } from "./helpers.js";
import { PG_URL, Schemas, sql, storeUrl, terminateSessions } from "./postgres-helpers.js";

const schemas = new Schemas();
after(() => schemas.dropAll());

// One pool for the stores of this file (each store in a schema of its own), and one more as "another process".
const here = await schemas.connect(4);
const elsewhere = await schemas.connect(2);

jobStoreConformance("postgres", async ({ retentionMs }) => {
  let offset = 0;
  const schema = await schemas.migrated(here);
  const store = new PostgresJobStore(here, { schema, retentionMs, now: () => Date.now() + offset });
  return {
    store,
    advance: (ms) => (offset += ms),
    reopen: () => new PostgresJobStore(elsewhere, { schema, retentionMs }),
  };
});

tenancyConformance("postgres", async ({ retentionMs }) => {
  let offset = 0;
  const schema = await schemas.migrated(here);
  const now = () => Date.now() + offset;
  return {
    store: new PostgresJobStore(here, { schema, retentionMs, now }),
    advance: (ms) => (offset += ms),
    twin: async () => new PostgresJobStore(elsewhere, { schema, retentionMs, now }),
    // The rows themselves, read over a connection of the test's own.
    held: () =>
      sql(async (client) => {
        const s = pg.escapeIdentifier(schema);
        const jobs = (await client.query(`SELECT id, client_id, idempotency_key FROM ${s}.jobs`)).rows as {
          id: string;
          client_id: string;
          idempotency_key: string | null;
        }[];
        const clients = (await client.query(`SELECT client_id FROM ${s}.clients`)).rows as { client_id: string }[];
        return {
          jobs: jobs.length,
          entries: [
            ...jobs.flatMap((r) => [
              `job:${r.id}`,
              `job-client:${r.client_id}`,
              ...(r.idempotency_key ? [`idem:${r.idempotency_key}`] : []),
            ]),
            ...clients.map((r) => `client:${r.client_id}`),
          ],
        };
      }),
  };
});

nonceStoreConformance(
  "postgres",
  async () => {
    const schema = await schemas.migrated(here);
    let time = Date.now();
    const now = () => time;
    const store = new PostgresNonceStore(here, { schema, now });
    return {
      store,
      now,
      advance: (ms: number) => {
        time += ms;
      },
      reopen: () => new PostgresNonceStore(elsewhere, { schema, now }),
    };
  },
  { durable: true, injectedClock: true },
);

/** Stores on a fresh schema, as `openStores` makes them, but on this file's pool. */
async function serverStores(): Promise<Partial<ServerOptions>> {
  const schema = await schemas.migrated(here);
  return {
    jobStore: new PostgresJobStore(here, { schema }),
    nonceStore: new PostgresNonceStore(here, { schema }),
    jobQueue: (deps) => new PostgresJobQueue({ ...deps, connection: here, schema, pollMs: 200 }),
  };
}

serverJobConformance("postgres", serverStores);
longPollConformance("postgres", serverStores);

describe("PostgreSQL store URL", () => {
  it("schema defaults to smcp; pool_max and schema are smcp's, the rest goes to libpq", () => {
    assert.deepEqual(parsePostgresUrl("postgres://u@h:5432/db"), { url: "postgres://u@h:5432/db", schema: "smcp", poolMax: 10 });
    const parsed = parsePostgresUrl("postgresql://u:pw@h/db?sslmode=require&schema=tenant_a&pool_max=3");
    assert.deepEqual(parsed, { url: "postgresql://u:pw@h/db?sslmode=require", schema: "tenant_a", poolMax: 3 });
    for (const bad of ["postgres://h/db?schema=Bad", 'postgres://h/db?schema=a"b', "postgres://h/db?pool_max=0", "http://h/db"]) {
      assert.throws(() => parsePostgresUrl(bad), /schema|pool_max|postgres/);
    }
  });

  it("openStores picks the backend by scheme, and a bad URL says what to fix without its password", async () => {
    await assert.rejects(openStores("postgres://nobody:secret-pw@127.0.0.1:1/db"), (e: unknown) => {
      const message = (e as Error).message;
      return /cannot reach PostgreSQL/.test(message) && !message.includes("secret-pw");
    });
  });
});

describe("migrations", () => {
  it("first open creates the schema at the current version; again, nothing to do; a newer schema is refused", async () => {
    const schema = schemas.name();
    assert.equal(await currentVersion(here, schema), 0);
    const first = await migrate(here, schema);
    assert.deepEqual(first, { schema, from: 0, to: SCHEMA_VERSION, applied: MIGRATIONS.map((m) => m.version) });
    assert.deepEqual(await migrate(here, schema), { schema, from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
    const tables = await sql(async (c) =>
      (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", [schema])).rows.map((r) => r.tablename),
    );
    assert.deepEqual(tables, ["clients", "jobs", "nonces", "offers", "rate_limits", "schema_migrations", "starts"]);
    await sql((c) => c.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.schema_migrations VALUES (999, 'from the future')`));
    await assert.rejects(migrate(here, schema), /version 999, written by a newer smcp/);
  });

  it("processes starting at once on a new schema: each step runs once", async () => {
    const schema = schemas.name();
    const results = await Promise.all([migrate(here, schema), migrate(elsewhere, schema), migrate(here, schema)]);
    assert.deepEqual(
      results.flatMap((r) => r.applied),
      MIGRATIONS.map((m) => m.version),
    );
    assert.ok(results.every((r) => r.to === SCHEMA_VERSION));
  });

  it("the printed SQL, run by psql-like means, makes the same schema (a DBA may apply it by hand)", async () => {
    const schema = schemas.name();
    await sql((c) => c.query(migrationSql(schema)));
    assert.equal(await currentVersion(here, schema), SCHEMA_VERSION);
    assert.deepEqual((await migrate(here, schema)).applied, []);
  });

  it("no superuser: a plain role with a schema it owns (made by a DBA) migrates and runs; without it, the error names the fix", async () => {
    const role = `smcp_role_${randomUUID().slice(0, 8)}`;
    const owned = schemas.name();
    await sql(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`);
      await c.query(`CREATE SCHEMA ${owned} AUTHORIZATION ${role}`);
    });
    const url = new URL(PG_URL);
    url.username = role;
    try {
      const stores = await openStores(`${url.toString()}?schema=${owned}&pool_max=2`);
      try {
        const { client, server } = pair({ stores, tools: demoTools });
        assert.deepEqual(await client.call("batch_sum", { numbers: [1, 2] }), { count: 2, total: 3 });
        const { job_id } = (await client.call("start_long_task", { seconds: 1, payload: { as: role } })) as { job_id: string };
        assert.deepEqual((await client.waitForJob(job_id, { timeoutMs: 20_000 })).result, { as: role });
        await server.close();
      } finally {
        await stores.jobStore.close();
        await stores.nonceStore.close();
      }
      const refused = schemas.name();
      await assert.rejects(openStores(`${url.toString()}?schema=${refused}&pool_max=1`), (e: unknown) => {
        const message = (e as Error).message;
        return /permission denied/.test(message) && message.includes(`CREATE SCHEMA ${refused} AUTHORIZATION`);
      });
    } finally {
      await sql(async (c) => {
        await c.query(`DROP SCHEMA IF EXISTS ${owned} CASCADE`);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    }
  });
});

describe("smcp migrate", () => {
  const cli = async (...argv: string[]) => {
    const io = captureIO({ SMCP_CONFIG: "/nonexistent/keyring.json" });
    const code = await runCli(["migrate", ...argv], io);
    return { code, out: io.outText(), err: io.errText() };
  };

  it("--check says what is missing (exit 1); --print shows the SQL and changes nothing; then it applies, once", async () => {
    const schema = schemas.name();
    const url = storeUrl(schema, 1);
    assert.deepEqual(await cli("--store", url, "--check"), {
      code: 1,
      out: `schema ${schema}: version 0, this smcp needs ${SCHEMA_VERSION}`,
      err: "",
    });
    const printed = await cli("--store", url, "--print");
    assert.equal(printed.code, 0);
    assert.match(printed.out, new RegExp(`^CREATE SCHEMA IF NOT EXISTS "${schema}";`));
    assert.match(printed.out, /CREATE TABLE "smcp_t_\w+"\.jobs \(/);
    assert.equal(await currentVersion(here, schema), 0, "--print changed nothing");
    assert.deepEqual(await cli("--store", url), {
      code: 0,
      out: `schema ${schema}: version 0 -> ${SCHEMA_VERSION} (applied ${MIGRATIONS.map((m) => m.version).join(", ")})`,
      err: "",
    });
    assert.deepEqual(await cli("--store", url), {
      code: 0,
      out: `schema ${schema}: at version ${SCHEMA_VERSION}, nothing to do`,
      err: "",
    });
    assert.equal((await cli("--store", url, "--check")).code, 0);
    assert.match((await cli("--store", url, "--print")).out, /nothing to apply/);
  });

  it("other stores have nothing to migrate; a missing or unreachable store is a usage error", async () => {
    assert.deepEqual(await cli("--store", "sqlite:/tmp/x.db"), {
      code: 0,
      out: "sqlite:/tmp/x.db: nothing to migrate (SQLite files bring themselves up to date when opened)",
      err: "",
    });
    assert.equal((await cli()).code, 2);
    const down = await cli("--store", "postgres://u:hunter2@127.0.0.1:1/db");
    assert.equal(down.code, 2);
    assert.match(down.err, /cannot reach PostgreSQL at postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/);
  });
});

describe("PostgreSQL specifics", () => {
  it("a nonce row is a 16-byte digest and a bigint expiry: neither the client id nor the nonce is stored", async () => {
    const schema = await schemas.migrated(here);
    const store = new PostgresNonceStore(here, { schema });
    await store.reserve("client-with-a-long-name", "nonce-secretive-123", 1_900_000_000_123);
    await store.close();
    const rows = await sql(async (c) => (await c.query(`SELECT digest, expires_at FROM ${schema}.nonces`)).rows);
    assert.equal(rows.length, 1);
    assert.equal((rows[0].digest as Buffer).length, 16);
    assert.equal(String(rows[0].expires_at), "1900000000123");
  });

  it("group commit: the reservations of one turn are one statement, committed before any is answered", async () => {
    const schema = await schemas.migrated(here);
    const store = new PostgresNonceStore(here, { schema });
    const count = () => sql(async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${schema}.nonces`)).rows[0].n));
    const answers = Array.from({ length: 1000 }, (_, i) => store.reserve("c1", `n-${i}`, Date.now() + 60_000));
    const first = await Promise.race(answers);
    assert.equal(first, true);
    assert.equal(await count(), 1000, "all 1000 were committed when the first was answered");
    assert.ok((await Promise.all(answers)).every(Boolean));
    await store.close();
  });

  it("the background sweep deletes expired pairs in batches and keeps live ones", async () => {
    const schema = await schemas.migrated(here);
    let time = Date.now();
    const store = new PostgresNonceStore(here, { schema, now: () => time, sweepEveryMs: 20, sweepBatch: 100 });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => store.reserve("c1", `n-${i}`, time + 1 + i)));
    time += 700; // 0..699 have expired
    const rows = () => sql(async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${schema}.nonces`)).rows[0].n));
    await until(async () => (await rows()) === 300, 10_000, "the sweep");
    for (let i = 690; i < 710; i++) assert.equal(await store.reserve("c1", `n-${i}`, time + 60_000), i < 700);
    await store.close();
  });

  it("a session ended in the middle of a transaction fails that transaction, not the process", async () => {
    const connection = await schemas.connect(1, `smcp-cut-tx-${randomUUID().slice(0, 8)}`);
    const alive = (pid: number) =>
      sql(async (c) => (await c.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount === 1);
    await assert.rejects(
      connection.transaction(async (tx) => {
        const pid = (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid as number;
        await sql((c) => c.query("SELECT pg_terminate_backend($1)", [pid]));
        await until(async () => !(await alive(pid)), 10_000, "the session to end");
        // The server's goodbye arrived between two statements: the next one fails, and nothing else happens.
        await tx.query("SELECT 1");
      }),
      /terminat|Connection/i,
    );
    assert.equal((await connection.pool.query("SELECT 1 AS one")).rows[0]?.one, 1, "the pool has a fresh session");
  });

  it("a cancel NOTIFY reaches the queue of another connection and aborts the job there", async () => {
    const schema = await schemas.migrated(here);
    const aborted: string[] = [];
    const queue = new PostgresJobQueue({
      connection: elsewhere,
      schema,
      runner: {
        workerId: "w",
        leaseFromNow: () => Date.now() + 60_000,
        run: async () => true,
        runClaimed: async () => {},
        abort: (id) => {
          aborted.push(id);
          return true;
        },
        abortAll: () => {},
      },
      store: new PostgresJobStore(elsewhere, { schema }),
      tools: new (await import("../src/tools/registry.js")).ToolRegistry(demoTools),
      concurrency: 0,
      execute: true,
      onError: () => {},
    });
    try {
      await elsewhere.listening(`${schema}_events`);
      const store = new PostgresJobStore(here, { schema });
      const { job } = await store.create({ id: randomUUID(), clientId: "c", tool: "start_long_task", args: {} });
      await store.start(job.id, "w", Date.now() + 60_000);
      await store.cancel(job.id);
      await until(() => aborted.includes(job.id), 5000, "the abort");
    } finally {
      await queue.close();
    }
  });
});

describe("PostgreSQL unreachable: fail closed, and back by itself", () => {
  it("connections cut (and refused) answer 503 unavailable, run nothing, accept no replay; once allowed again, it serves", async () => {
    // A role of its own, so cutting its sessions and refusing its logins touches nobody else's.
    const role = `smcp_down_${randomUUID().slice(0, 8)}`;
    const app = `smcp-down-${randomUUID().slice(0, 8)}`;
    const schema = schemas.name();
    await sql(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.query(`CREATE SCHEMA ${schema} AUTHORIZATION ${role}`);
    });
    const url = new URL(PG_URL);
    url.username = role;
    url.searchParams.set("schema", schema);
    url.searchParams.set("pool_max", "3");
    url.searchParams.set("application_name", app);
    const calls = { spy: 0 };
    const errors: unknown[] = [];
    const stores = await openStores(url.toString(), { onError: (e) => errors.push(e) });
    const { client, server } = pair({ stores, tools: [...demoTools, spyTool(calls)] });
    // Replay cache and jobs in memory, only the rate counters in PostgreSQL: the limiter alone must fail closed too.
    const limiterOnly = pair({
      stores: {
        jobStore: new MemoryJobStore(),
        nonceStore: new MemoryNonceStore(),
        rateLimiter: stores.rateLimiter as RateLimiterFactory,
      },
      tools: [spyTool(calls)],
    });
    try {
      assert.deepEqual(await limiterOnly.client.call("spy", { n: 0 }), { n: 0 });
      assert.deepEqual(await client.call("spy", { n: 1 }), { n: 1 });
      const seen = signedEnvelope({ tool: "spy", args: { n: 2 } });
      assert.equal((await server.handle(seen)).response.status, "ok");
      const before = calls.spy;

      // Down: logins refused, and every session of ours ended (idle pool connections and the LISTEN one).
      await sql((c) => c.query(`ALTER ROLE ${role} NOLOGIN`));
      assert.ok((await terminateSessions(app)) >= 1, "sessions were cut");
      for (const body of [
        signedEnvelope({ tool: "spy", args: { n: 3 } }),
        signedEnvelope({ tool: "start_long_task", args: { seconds: 1, payload: {} } }),
        seen,
      ]) {
        const answer = await server.handle(body);
        assert.equal(answer.httpStatus, 503);
        assert.equal(answer.response.result?.code, "unavailable");
      }
      const limited = await limiterOnly.server.handle(signedEnvelope({ tool: "spy", args: { n: 5 } }));
      assert.equal(limited.httpStatus, 503);
      assert.equal(limited.response.result?.code, "unavailable");
      assert.equal(calls.spy, before, "nothing ran while the store was down");
      assert.ok(errors.length >= 1, "the outage was reported");

      // Back: service resumes without a restart.
      await sql((c) => c.query(`ALTER ROLE ${role} LOGIN`));
      await until(
        async () => {
          try {
            return (await client.call("spy", { n: 4 })).n === 4;
          } catch (error) {
            if (error instanceof SmcpError && error.code === "unavailable") return false;
            throw error;
          }
        },
        15_000,
        "service to resume",
      );
      assert.equal((await server.handle(seen)).response.result?.code, "replay", "a nonce from before the outage is still held");
      const { job_id } = (await client.call("start_long_task", { seconds: 1, payload: { after: "outage" } })) as {
        job_id: string;
      };
      assert.deepEqual((await client.waitForJob(job_id, { timeoutMs: 20_000 })).result, { after: "outage" });
      // A long poll after the cut is woken by NOTIFY again (the LISTEN connection came back by itself).
      const { job_id: second } = (await client.call("start_long_task", { seconds: 1, payload: { n: 2 } })) as { job_id: string };
      const polled = await client.poll(second, { waitMs: 10_000, version: 1 });
      assert.ok(polled.status === "done" || polled.result?.progress !== undefined, JSON.stringify(polled));
      assert.deepEqual(await limiterOnly.client.call("spy", { n: 6 }), { n: 6 });
    } finally {
      await server.close();
      await limiterOnly.server.close();
      await sql(async (c) => {
        await c.query(`ALTER ROLE ${role} LOGIN`);
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    }
  });

  it("one cut (pg_terminate_backend) of every session costs at most the requests in flight: the next ones are served", async () => {
    const app = `smcp-cut-${randomUUID().slice(0, 8)}`;
    const schema = schemas.name();
    const stores = await openStores(`${storeUrl(schema, 3)}&application_name=${app}`);
    const { client, server } = pair({ stores, tools: demoTools });
    try {
      assert.equal((await client.call("batch_sum", { numbers: [1] })).total, 1);
      const { job_id } = (await client.call("start_long_task", { seconds: 1, payload: {} })) as { job_id: string };
      await client.poll(job_id, { waitMs: 100, version: 1 }); // opens the LISTEN connection
      assert.ok((await terminateSessions(app)) >= 2);
      await until(
        async () => {
          try {
            return (await client.call("batch_sum", { numbers: [5] })).total === 5;
          } catch {
            return false;
          }
        },
        10_000,
        "a request after the cut",
      );
      assert.equal((await client.waitForJob(job_id, { timeoutMs: 20_000 })).status, "done");
    } finally {
      await server.close();
    }
  });
});

// Opened by URL, as `smcp serve` does: the rate limiter's counters are shared by every replica of the schema.
describe("rate counters in PostgreSQL", () => {
  it("two servers on one schema share a client's rate", async () => {
    const schema = schemas.name();
    const url = storeUrl(schema, 2);
    const [a, b] = [await openStores(url), await openStores(url)];
    const limits = { rate: 5, burst: 0 };
    const one = pair({ stores: a, tools: demoTools, limits });
    const two = pair({ stores: b, tools: demoTools, limits });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => (i % 2 ? one : two).client.call("batch_sum", { numbers: [i] })),
      );
      const ok = outcomes.filter((o) => o.status === "fulfilled").length;
      // 5 a second with no burst, shared: at most two windows' worth if the calls straddle a second.
      assert.ok(ok >= 5 && ok <= 10, `${ok} of 12 served at 5/s over two servers`);
      assert.ok(
        outcomes.every(
          (o) =>
            o.status === "fulfilled" || ((o.reason as SmcpError).code === "rate_limited" && o.reason.details.reason === "rate"),
        ),
      );
      const rows = await sql(async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${schema}.rate_limits`)).rows[0].n));
      assert.ok(rows >= 1, "the counters are rows in the schema");
    } finally {
      await one.server.close();
      await two.server.close();
    }
  });
});

describe("stores close cleanly", () => {
  it("openPostgresStores: the pool ends once both stores are closed", async () => {
    const schema = schemas.name();
    const stores = await openPostgresStores(storeUrl(schema, 1));
    await stores.jobStore.close();
    assert.equal(await stores.nonceStore.reserve("c", "n", Date.now() + 1000), true, "the replay cache still works");
    await stores.nonceStore.close();
    const connection = await PostgresConnection.open(PG_URL, { poolMax: 1 });
    await connection.close();
  });
});
