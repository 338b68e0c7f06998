import { randomBytes } from "node:crypto";
import type { SmcpClient } from "../client/client.js";
import type { JsonObject } from "../protocol/canonical.js";
import { SmcpError } from "../protocol/errors.js";

/** Fresh random keys for a demo or a local setup: a server secret and one client's. */
export function freshDemoKeys(): { serverId: string; serverSecret: string; clientId: string; clientSecret: string } {
  return {
    serverId: "mcp-server-001",
    serverSecret: randomBytes(32).toString("base64url"),
    clientId: "client-001",
    clientSecret: randomBytes(32).toString("base64url"),
  };
}

const show = (value: unknown) => JSON.stringify(value);

/**
 * The seed's flow, step by step, through a client: identity, a sum, a
 * validation failure, a 2 s job polled to done. Every answer printed has been
 * verified (signature, request_id, server_id, freshness) before it is shown.
 */
export async function runDemo(client: SmcpClient, print: (line: string) => void = console.log): Promise<void> {
  print("1. server_identity");
  const identity = await client.request("server_identity");
  print(`   verified ${identity.status}: ${show(identity.result)}`);

  print("2. batch_sum {numbers: [10, 20, 30]}");
  const sum = await client.request("batch_sum", { numbers: [10, 20, 30] });
  print(`   verified ${sum.status}: ${show(sum.result)}`);

  print("3. batch_sum {numbers: []} (a validation failure)");
  try {
    await client.call("batch_sum", { numbers: [] });
    throw new Error("an empty list must be refused");
  } catch (error) {
    if (!(error instanceof SmcpError) || error.code !== "bad_args") throw error;
    print(`   verified error: ${error.code}: ${error.message} ${show(error.details)}`);
  }

  print('4. start_long_task {seconds: 2, payload: {data: "complete"}}');
  const started = await client.request("start_long_task", { seconds: 2, payload: { data: "complete" } });
  const jobId = String((started.result as JsonObject).job_id);
  print(`   verified ${started.status}: job_id ${jobId}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const polled = await client.poll(jobId);
    if (polled.status === "running") {
      const progress = polled.result?.progress;
      print(`   poll -> verified running (${polled.result?.state}): ${progress ? show(progress) : "no progress reported yet"}`);
      continue;
    }
    print(`   poll -> verified ${polled.status}: ${show(polled.result)}`);
    if (polled.status !== "done") throw new Error(`job ended in ${polled.status}`);
    break;
  }
  print("done: every response above was signed by the server and verified by the client.");
}
