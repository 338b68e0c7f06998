import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { createClient, httpTransport, parseLossless, type SmcpClient, SmcpError } from "../src/index.js";
import { PostgresConnection, PostgresJobStore } from "../src/postgres.js";
import { SqliteJobStore } from "../src/sqlite.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  OTHER_CLIENT_ID,
  OTHER_CLIENT_SECRET,
  SERVE_KEYS,
  SERVER_ID,
  SERVER_SECRET,
  signedEnvelope,
  until,
} from "./helpers.js";
import { PG_URL, Schemas, sql, storeUrl } from "./postgres-helpers.js";
import { type Child, startCli } from "./process-helpers.js";

const TOOLS_MODULE = fileURLToPath(new URL("./fixtures/tenancy-tools.mjs", import.meta.url));
const KEYS = SERVE_KEYS;
const children: Child[] = [];
after(async () => {
  for (const child of children) await child.stop("SIGKILL");
});
const tmp = () => mkdtempSync(join(tmpdir(), "smcp-tenancy-"));

interface Served {
  child: Child;
  origin: string;
  url: string;
  client: SmcpClient;
  other: SmcpClient;
}

/** `smcp serve` on a free port, with the test's two clients (or a keyring file given in `extra`). */
async function serve(args: string[], env: NodeJS.ProcessEnv = { SMCP_CONFIG: "/nonexistent/keyring.json" }): Promise<Served> {
  const child = await startCli(["serve", "--port", "0", ...args], env);
  children.push(child);
  const origin = child.line.replace(/^listening on /, "");
  const url = `${origin}/mcp`;
  const make = (clientId: string, clientSecret: string) =>
    createClient({ clientId, clientSecret, serverId: SERVER_ID, serverSecret: SERVER_SECRET, transport: httpTransport(url) });
  return { child, origin, url, client: make(CLIENT_ID, CLIENT_SECRET), other: make(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET) };
}

async function post(url: string, body: string): Promise<{ status: number; code: string | undefined }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  const message = parseLossless(await response.text()).value as { result: Record<string, unknown> | null };
  return { status: response.status, code: message.result?.code as string | undefined };
}

/** The JSON log lines a stopped process wrote. */
function logLines(child: Child): Record<string, unknown>[] {
  return child
    .stderr()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const jobOf = async (client: SmcpClient, tool: string, args: Record<string, unknown>) =>
  ((await client.call(tool, args as never)) as { job_id: string }).job_id;

const progressed = (client: SmcpClient, jobId: string) =>
  until(
    async () => ((await client.poll(jobId)).result?.progress as { done?: number } | null)?.done === 1,
    20_000,
    "the job's first progress",
  );

describe("prompt recovery on one host (issue 10)", () => {
  it("SQLite serve killed with SIGKILL mid-job: the next start requeues the job at once, long before its lease, and it completes", async () => {
    const db = join(tmp(), "smcp.db");
    const lease = ["--lease-ms", "600000"]; // ten minutes: only recovery at start can explain a prompt rerun
    const first = await serve(["--store", `sqlite:${db}`, ...lease, ...KEYS]);
    const jobId = await jobOf(first.client, "start_long_task", { seconds: 2, payload: { recovered: true } });
    await progressed(first.client, jobId);
    await first.child.stop("SIGKILL");
    const store = new SqliteJobStore(db);
    try {
      const orphan = await store.get(jobId);
      assert.equal(orphan?.state, "running", "left running by the killed process");
      assert.ok((orphan?.leaseUntil ?? 0) > Date.now() + 500_000, "its lease has most of ten minutes left");
      const second = await serve(["--store", `sqlite:${db}`, ...lease, ...KEYS]);
      await until(async () => (await second.client.poll(jobId)).status === "done", 30_000, "the job to run again and end");
      assert.deepEqual((await second.client.poll(jobId)).result, { recovered: true });
      assert.equal((await store.get(jobId))?.attempts, 2);
    } finally {
      await store.close();
    }
  });

  it("a job held by a live process on this host is left alone by a second process's start", async () => {
    const db = join(tmp(), "smcp.db");
    const lease = ["--lease-ms", "600000"];
    const holder = await serve(["--store", `sqlite:${db}`, ...lease, ...KEYS]);
    const held = await jobOf(holder.client, "start_long_task", { seconds: 20, payload: {} });
    await progressed(holder.client, held);
    const store = new SqliteJobStore(db);
    try {
      const before = await store.get(held);
      // The second process alone has `quick`: once it ran one, its start-up recovery is behind it.
      const second = await serve(["--store", `sqlite:${db}`, ...lease, "--tools", TOOLS_MODULE, ...KEYS]);
      const quick = await jobOf(second.client, "quick", {});
      await until(async () => (await second.client.poll(quick)).status === "done", 20_000, "the second process to run a job");
      assert.equal(((await second.client.poll(quick)).result as { pid?: number }).pid, second.child.process.pid);
      const after = await store.get(held);
      assert.equal(after?.state, "running");
      assert.equal(after?.workerId, before?.workerId, "still the live holder's");
      assert.equal(after?.attempts, 1, "never taken over");
      assert.ok(before?.workerId?.includes(`/${holder.child.process.pid}/`), "the worker id names the holder's pid");
    } finally {
      await store.close();
    }
  });
});

describe("retention through the CLI (issue 10)", () => {
  it("--retention-ms: a finished job is gone after the sweep: poll answers unknown_job and its SQLite row is deleted", async () => {
    const db = join(tmp(), "smcp.db");
    const { client } = await serve(["--store", `sqlite:${db}`, "--retention-ms", "1000", ...KEYS]);
    const jobId = await jobOf(client, "start_long_task", { seconds: 1, payload: { short: "lived" } });
    await until(async () => (await client.poll(jobId)).status === "done", 20_000, "done");
    const reader = new Database(db, { readonly: true });
    try {
      const rows = () => (reader.prepare("SELECT count(*) AS n FROM smcp_jobs WHERE id = ?").get(jobId) as { n: number }).n;
      assert.equal(rows(), 1);
      // The sweep runs every second with this retention; the row goes, not only its visibility.
      await until(() => rows() === 0, 15_000, "the sweep to delete the row");
      await assert.rejects(
        client.call("poll_job", { job_id: jobId }),
        (e: unknown) => e instanceof SmcpError && e.code === "unknown_job",
      );
      const counters = reader.prepare("SELECT count(*) AS n FROM smcp_clients WHERE client_id = ?").get(CLIENT_ID) as {
        n: number;
      };
      assert.equal(counters.n, 0, "the client's quota counters went with its last job");
    } finally {
      reader.close();
    }
  });
});

describe("observability through smcp serve (issue 10)", () => {
  const ARG_MARKER = "arg-value-7d1e";
  const NUMBER_MARKER = 918273645;

  it("--metrics: Prometheus text with requests by tool and code, latency, jobs by state, limiter refusals, store health; no ids, no secrets; JSON request and job log lines", async () => {
    const served = await serve(["--store", "memory", "--metrics", "--max-open-jobs", "1", ...KEYS]);
    const { client, other, url, origin } = served;
    let requests = 0;
    const count = <T>(p: Promise<T>) => {
      requests++;
      return p;
    };
    const off = await fetch(`${origin}/metricsx`);
    assert.equal(off.status, 404);
    await count(client.call("batch_sum", { numbers: [NUMBER_MARKER, 1] }));
    await count(client.call("batch_sum", { numbers: [2] }));
    await count(assert.rejects(client.call("batch_sum", { numbers: [] }), (e: unknown) => (e as SmcpError).code === "bad_args"));
    const once = signedEnvelope({ tool: "batch_sum", args: { numbers: [3] } });
    assert.equal((await count(post(url, once))).status, 200);
    assert.equal((await count(post(url, once))).code, "replay");
    const forged = signedEnvelope({ tool: "batch_sum", args: { numbers: [4] } }, "not-the-client-secret-at-all");
    assert.equal((await count(post(url, forged))).code, "bad_signature");
    const jobId = await count(jobOf(client, "start_long_task", { seconds: 1, payload: { marker: ARG_MARKER } }));
    const refused = await count(post(url, signedEnvelope({ tool: "start_long_task", args: { seconds: 1, payload: {} } })));
    assert.equal(refused.status, 429);
    assert.equal(refused.code, "rate_limited");
    await until(
      async () => {
        requests++;
        return (await client.poll(jobId)).status === "done";
      },
      20_000,
      "done",
    );
    await count(other.call("batch_sum", { numbers: [5] }));

    const response = await fetch(`${origin}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const sample = (name: string, labels: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
      assert.ok(line, `no sample ${name}{${labels}}`);
      return Number(line.split(" ").at(-1));
    };
    assert.equal(sample("smcp_requests_total", 'tool="batch_sum",code="ok"'), 4);
    assert.equal(sample("smcp_requests_total", 'tool="batch_sum",code="bad_args"'), 1);
    // Refused before the tool is looked up: no tool label (an unknown name is never a label).
    assert.equal(sample("smcp_requests_total", 'tool="",code="replay"'), 1);
    assert.equal(sample("smcp_requests_total", 'tool="",code="bad_signature"'), 1);
    assert.equal(sample("smcp_requests_total", 'tool="start_long_task",code="accepted"'), 1);
    assert.equal(sample("smcp_requests_total", 'tool="start_long_task",code="rate_limited"'), 1);
    assert.equal(sample("smcp_request_duration_seconds_count", 'tool="batch_sum"'), 5);
    assert.match(text, /^smcp_request_duration_seconds_bucket\{le="0\.005",tool="batch_sum"\} \d+$/m);
    assert.equal(sample("smcp_jobs", 'state="finished"'), 1);
    assert.equal(sample("smcp_jobs", 'state="queued"'), 0);
    assert.equal(sample("smcp_jobs", 'state="running"'), 0);
    assert.equal(sample("smcp_rate_limited_total", 'reason="open_jobs"'), 1);
    assert.equal(sample("smcp_job_transitions_total", 'tool="start_long_task",event="done"'), 1);
    assert.match(text, /^smcp_job_queue_wait_seconds_count 1$/m);
    assert.match(text, /^smcp_store_up 1$/m);
    assert.match(text, /^smcp_store_outages_total 0$/m);
    for (const hidden of [CLIENT_ID, OTHER_CLIENT_ID, SERVER_SECRET, CLIENT_SECRET, OTHER_CLIENT_SECRET, ARG_MARKER]) {
      assert.ok(!text.includes(hidden), `the metrics hold '${hidden}'`);
    }
    assert.ok(!text.includes(String(NUMBER_MARKER)));

    assert.equal(await served.child.stop("SIGTERM"), 0);
    const lines = logLines(served.child);
    const requestLines = lines.filter((l) => l.msg === "request");
    assert.equal(requestLines.length, requests, "one line per request");
    for (const line of requestLines) {
      for (const field of ["request_id", "tool", "code", "http_status", "duration_ms"]) {
        const beforeTool = line.code === "bad_signature" || line.code === "replay";
        assert.ok(field in line || (field === "tool" && beforeTool), `${field} in ${JSON.stringify(line)}`);
      }
      assert.equal(typeof line.duration_ms, "number");
    }
    const refusedLine = requestLines.find((l) => l.code === "rate_limited");
    assert.deepEqual(
      { client_id: refusedLine?.client_id, tool: refusedLine?.tool, http_status: refusedLine?.http_status },
      { client_id: CLIENT_ID, tool: "start_long_task", http_status: 429 },
    );
    assert.equal(requestLines.find((l) => l.code === "bad_signature")?.client_id, undefined, "no client id before the signature");
    assert.deepEqual(
      lines.filter((l) => l.job_id === jobId).map((l) => l.msg),
      ["job accepted", "job started", "job done"],
    );
    const all = served.child.stderr();
    for (const hidden of [SERVER_SECRET, CLIENT_SECRET, OTHER_CLIENT_SECRET, ARG_MARKER, String(NUMBER_MARKER)]) {
      assert.ok(!all.includes(hidden), `the log holds '${hidden}'`);
    }
  });

  it("--metrics-per-client labels requests with client ids; without --metrics there is no /metrics; --log-level warn silences request lines", async () => {
    const perClient = await serve(["--store", "memory", "--metrics", "--metrics-per-client", ...KEYS]);
    await perClient.client.call("batch_sum", { numbers: [1] });
    const text = await (await fetch(`${perClient.origin}/metrics`)).text();
    assert.match(text, new RegExp(`^smcp_requests_total\\{tool="batch_sum",code="ok",client_id="${CLIENT_ID}"\\} 1$`, "m"));
    assert.ok(!text.includes(CLIENT_SECRET));

    const quiet = await serve(["--store", "memory", "--log-level", "warn", ...KEYS]);
    assert.equal((await fetch(`${quiet.origin}/metrics`)).status, 404);
    await quiet.client.call("batch_sum", { numbers: [1] });
    const jobId = await jobOf(quiet.client, "start_long_task", { seconds: 1, payload: {} });
    await until(async () => (await quiet.client.poll(jobId)).status === "done", 20_000, "done");
    assert.equal(await quiet.child.stop("SIGTERM"), 0);
    const lines = logLines(quiet.child);
    assert.deepEqual(
      lines.filter((l) => l.msg === "request" || String(l.msg).startsWith("job ")),
      [],
      "no request or job lines at warn",
    );
  });
});

describe("per-client overrides in the keyring file (issue 10)", () => {
  it("clients: {id: {keys, rate, max_open_jobs, max_stored_bytes}} take effect through smcp serve; others keep the defaults", async () => {
    const dir = tmp();
    const path = join(dir, "keyring.json");
    const thirdId = "client-003";
    const thirdSecret = "client_secret_key_third_01";
    writeFileSync(
      path,
      JSON.stringify({
        server_id: SERVER_ID,
        server_secret: SERVER_SECRET,
        clients: {
          [CLIENT_ID]: { keys: CLIENT_SECRET, rate: "2/s", max_open_jobs: 1 },
          [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET,
          [thirdId]: { keys: [thirdSecret], max_stored_bytes: 10 },
        },
      }),
      { mode: 0o600 },
    );
    const { client, other, url } = await serve(["--store", "memory", "--config", path]);
    const third = createClient({
      clientId: thirdId,
      clientSecret: thirdSecret,
      serverId: SERVER_ID,
      serverSecret: SERVER_SECRET,
      transport: httpTransport(url),
    });
    const reason = (e: unknown) =>
      e instanceof SmcpError && e.code === "rate_limited" ? (e.details as { reason?: string }).reason : e;
    await jobOf(client, "start_long_task", { seconds: 20, payload: {} });
    await assert.rejects(
      jobOf(client, "start_long_task", { seconds: 1, payload: {} }),
      (e: unknown) => reason(e) === "open_jobs",
    );
    await jobOf(other, "start_long_task", { seconds: 20, payload: {} });
    await jobOf(other, "start_long_task", { seconds: 20, payload: {} });
    await assert.rejects(
      jobOf(third, "start_long_task", { seconds: 1, payload: {} }),
      (e: unknown) => reason(e) === "stored_bytes",
    );
    assert.deepEqual(await third.call("batch_sum", { numbers: [1] }), { count: 1, total: 1 });
    // 2/s with the default burst (twice the rate): a quick run of calls meets the rate; the other client does not.
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => client.call("batch_sum", { numbers: [1] })));
    const refusals = outcomes.filter((o) => o.status === "rejected").map((o) => reason((o as PromiseRejectedResult).reason));
    assert.ok(refusals.length >= 1, "none of 10 quick calls refused");
    assert.ok(
      refusals.every((r) => r === "rate"),
      JSON.stringify(refusals),
    );
    const others = await Promise.allSettled(Array.from({ length: 10 }, () => other.call("batch_sum", { numbers: [1] })));
    assert.equal(others.filter((o) => o.status === "fulfilled").length, 10);
  });
});

describe("SQLite quotas across processes (issue 10)", () => {
  it("creates racing from four processes on one file never pass the quota", async () => {
    const db = join(tmp(), "race.db");
    const sqlite = new URL("../dist/sqlite.js", import.meta.url).href;
    // Each process opens the store, says "ready", waits for the go on stdin, then makes 10 jobs for one client
    // with a quota of 5 open jobs, and prints how many it got.
    const script = `
      import { randomUUID } from "node:crypto";
      import { once } from "node:events";
      const { SqliteJobStore } = await import(${JSON.stringify(sqlite)});
      const store = new SqliteJobStore(${JSON.stringify(db)});
      console.log("ready");
      await once(process.stdin, "data");
      let made = 0;
      for (let i = 0; i < 10; i++) {
        try {
          await store.create({ id: randomUUID(), clientId: "racer", tool: "t", args: { i }, maxOpenJobs: 5 });
          made++;
        } catch (e) {
          if (e.code !== "rate_limited") throw e;
        }
      }
      await store.close();
      console.log(made);
      process.exit(0);`;
    const racers = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] }),
    );
    const lines = racers.map((child) =>
      createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator](),
    );
    for (const line of lines) assert.equal((await line.next()).value, "ready");
    for (const child of racers) child.stdin?.write("go\n");
    const made = await Promise.all(lines.map(async (line) => Number((await line.next()).value)));
    assert.equal(
      made.reduce((a, b) => a + b, 0),
      5,
      `made per process: ${made.join(", ")}`,
    );
    const store = new SqliteJobStore(db);
    try {
      const jobs = await store.list({ clientId: "racer" });
      assert.equal(jobs.length, 5);
      assert.deepEqual(await store.usage("racer"), { open: 5, bytes: jobs.reduce((sum, j) => sum + j.bytes, 0) });
    } finally {
      await store.close();
    }
  });
});

describe("PostgreSQL through the CLI (issue 10 on issue 25's store)", () => {
  const schemas = new Schemas();
  after(async () => {
    for (const child of children) await child.stop("SIGKILL");
    await schemas.dropAll();
  });
  /** A job store on the schema, as another process sees it. */
  const inspect = async <T>(schema: string, look: (store: PostgresJobStore) => Promise<T>): Promise<T> => {
    const connection = await PostgresConnection.open(PG_URL, { poolMax: 1 });
    const store = new PostgresJobStore(connection, { schema, closeConnection: true });
    try {
      return await look(store);
    } finally {
      await store.close();
    }
  };

  it("a job held by a live process on this host is left alone by a second process's start", async () => {
    const schema = schemas.name();
    const lease = ["--lease-ms", "600000"];
    const holder = await serve(["--store", storeUrl(schema), ...lease, ...KEYS]);
    const held = await jobOf(holder.client, "start_long_task", { seconds: 20, payload: {} });
    await progressed(holder.client, held);
    const before = await inspect(schema, (store) => store.get(held));
    // The second process alone has `quick`: once it ran one, its start-up recovery is behind it.
    const second = await serve(["--store", storeUrl(schema), ...lease, "--tools", TOOLS_MODULE, ...KEYS]);
    const quick = await jobOf(second.client, "quick", {});
    await until(async () => (await second.client.poll(quick)).status === "done", 20_000, "the second process to run a job");
    assert.equal(((await second.client.poll(quick)).result as { pid?: number }).pid, second.child.process.pid);
    const after = await inspect(schema, (store) => store.get(held));
    assert.equal(after?.state, "running");
    assert.equal(after?.workerId, before?.workerId, "still the live holder's");
    assert.equal(after?.attempts, 1, "never taken over");
  });

  it("--retention-ms: a finished job's row is deleted by the sweep, and its client's counters with it", async () => {
    const schema = schemas.name();
    const { client } = await serve(["--store", storeUrl(schema), "--retention-ms", "1000", ...KEYS]);
    const jobId = await jobOf(client, "start_long_task", { seconds: 1, payload: { short: "lived" } });
    await until(async () => (await client.poll(jobId)).status === "done", 20_000, "done");
    const rows = (table: string, column: string, value: string) =>
      sql(async (c) =>
        Number((await c.query(`SELECT count(*) AS n FROM ${schema}.${table} WHERE ${column} = $1`, [value])).rows[0].n),
      );
    assert.equal(await rows("jobs", "id", jobId), 1);
    await until(async () => (await rows("jobs", "id", jobId)) === 0, 15_000, "the sweep to delete the row");
    await assert.rejects(
      client.call("poll_job", { job_id: jobId }),
      (e: unknown) => e instanceof SmcpError && e.code === "unknown_job",
    );
    assert.equal(await rows("clients", "client_id", CLIENT_ID), 0, "the client's quota counters went with its last job");
  });

  it("creates racing from four processes on one schema never pass the quota", async () => {
    const schema = schemas.name();
    const postgres = new URL("../dist/postgres.js", import.meta.url).href;
    // Each process opens the store, says "ready", waits for the go on stdin, then makes 10 jobs for one client
    // with a quota of 5 open jobs, and prints how many it got.
    const script = `
      import { randomUUID } from "node:crypto";
      import { once } from "node:events";
      const { openPostgresStores } = await import(${JSON.stringify(postgres)});
      const { jobStore: store, nonceStore } = await openPostgresStores(${JSON.stringify(storeUrl(schema, 2))});
      console.log("ready");
      await once(process.stdin, "data");
      let made = 0;
      for (let i = 0; i < 10; i++) {
        try {
          await store.create({ id: randomUUID(), clientId: "racer", tool: "t", args: { i }, maxOpenJobs: 5 });
          made++;
        } catch (e) {
          if (e.code !== "rate_limited") throw e;
        }
      }
      await store.close();
      await nonceStore.close();
      console.log(made);
      process.exit(0);`;
    const racers = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] }),
    );
    const lines = racers.map((child) =>
      createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator](),
    );
    for (const line of lines) assert.equal((await line.next()).value, "ready");
    for (const child of racers) child.stdin?.write("go\n");
    const made = await Promise.all(lines.map(async (line) => Number((await line.next()).value)));
    assert.equal(
      made.reduce((a, b) => a + b, 0),
      5,
      `made per process: ${made.join(", ")}`,
    );
    await inspect(schema, async (store) => {
      const jobs = await store.list({ clientId: "racer" });
      assert.equal(jobs.length, 5);
      assert.deepEqual(await store.usage("racer"), { open: 5, bytes: jobs.reduce((sum, j) => sum + j.bytes, 0) });
    });
  });
});
