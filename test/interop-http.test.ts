import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { runCli } from "../src/cli/run.js";
import { type RunningServer, serveHttp } from "../src/http.js";
import { createServer, demoTools } from "../src/index.js";
import { captureIO, connectionFlags } from "./cli-helpers.js";
import { CLIENT_ID, CLIENT_SECRET, PEER, pythonAsync, SERVER_ID, SERVER_SECRET } from "./helpers.js";

type Step = {
  tool: string;
  http: number;
  verified: boolean;
  shape_ok: boolean;
  request_id_ok: boolean;
  status: string;
  result: Record<string, unknown> | null;
};

describe("over HTTP: the seed's Python client calls our server", () => {
  let running: RunningServer;
  before(async () => {
    const server = createServer({
      keyring: { serverId: SERVER_ID, serverSecrets: SERVER_SECRET, clients: { [CLIENT_ID]: CLIENT_SECRET } },
      tools: demoTools,
    });
    running = await serveHttp(server, { port: 0 });
  });
  after(() => running.close());

  it("every tool and a job polled to done; every answer verifies in the seed's code", async () => {
    const steps = await pythonAsync<Step[]>("http-client", {
      url: running.url,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      server_id: SERVER_ID,
      server_secret: SERVER_SECRET,
      calls: [
        { tool: "server_identity", args: {} },
        { tool: "batch_sum", args: { numbers: [10, 20, 30] } },
        { tool: "list_tools", args: {} },
        { tool: "poll_job", args: { job_id: "unknown" } },
      ],
    });
    for (const step of steps) {
      assert.equal(step.verified, true, `${step.tool}: signature`);
      assert.equal(step.shape_ok, true, `${step.tool}: MCPResponse shape`);
      assert.equal(step.request_id_ok, true, `${step.tool}: request_id`);
    }
    assert.equal(steps[1]?.result?.total, 60);
    assert.equal(steps[3]?.http, 404);
    assert.equal(steps[3]?.result?.code, "unknown_job");
    const last = steps.at(-1);
    assert.equal(last?.status, "done");
    assert.deepEqual(last?.result, { from: "python", f: 6 });
  });
});

describe("over HTTP: our CLI calls the seed's Python server", () => {
  let peer: ChildProcess;
  let url = "";
  before(async () => {
    peer = spawn(
      "python3",
      [PEER, "serve", JSON.stringify({ server_id: SERVER_ID, server_secret: SERVER_SECRET, client_secret: CLIENT_SECRET })],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    const [line] = (await once(createInterface({ input: peer.stdout as NodeJS.ReadableStream }), "line")) as [string];
    url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/mcp`;
  });
  after(async () => {
    peer.stdin?.end(); // the shell stops itself when its stdin closes
    if (peer.exitCode === null) await once(peer, "exit");
  });

  const connection = () => connectionFlags(url);

  it("verifies the seed's answers, printing its 6.0 as it was signed", async () => {
    const io = captureIO();
    assert.equal(await runCli(["call", "batch_sum", '{"numbers":[1,2,3]}', "--json", ...connection()], io), 0, io.errText());
    assert.match(io.outText(), /"result":\{"count":3,"total":6\.0\}/);
    const identity = captureIO();
    assert.equal(await runCli(["call", "server_identity", ...connection()], identity), 0, identity.errText());
    assert.match(identity.outText(), /"fingerprint": "[0-9a-f]{16}"/);
  });

  it("polls the seed's job to done with --wait", async () => {
    const io = captureIO();
    assert.equal(
      await runCli(["call", "start_long_task", '{"seconds":1,"payload":{"k":"v"}}', "--wait", "--json", ...connection()], io),
      0,
      io.errText(),
    );
    const lines = io.stdout.filter((l) => l.startsWith("{"));
    assert.match(
      lines.at(-1) ?? "",
      /"result":\{"k":"v"\},"server_id":"mcp-server-001","signature":"[0-9a-f]{64}","status":"done"/,
    );
  });

  it("the seed's unsigned error answer is exit 2 with a clear message", async () => {
    const io = captureIO();
    const args = [
      "call",
      "batch_sum",
      '{"numbers":[1]}',
      ...connection().slice(0, 4),
      "--client-secret",
      "not-the-right-secret-xx",
      ...connection().slice(6),
    ];
    assert.equal(await runCli(args, io), 2);
    assert.match(io.errText(), /bad_envelope: the answer is not a signed mcp\/0\.1 response/);
    assert.doesNotMatch(io.errText(), /\n\s+at /);
  });
});
