import { randomUUID } from "node:crypto";
import { z } from "zod";
import { type Key, toKeys } from "../src/protocol/keyring.js";
import { signMessage } from "../src/protocol/sign.js";
import { defineTool } from "../src/tools/define.js";

/** The keys every benchmark uses (client and server id `bench`). */
export const BENCH = {
  serverSecret: "bench-server-secret-0123456789",
  clientSecret: "bench-client-secret-0123456789",
} as const;

const key = toKeys(BENCH.clientSecret, "bench")[0] as Key;

/** A unique envelope (own nonce, fresh ts_ms) signed by the bench client. */
export function benchEnvelope(tool: string, args: Record<string, unknown>): string {
  return signMessage(
    {
      v: "mcp/0.1",
      request_id: randomUUID(),
      ts_ms: Date.now(),
      client_id: "bench",
      server_id: "bench",
      tool,
      args,
      nonce: randomUUID(),
    },
    key,
  ).body;
}

/** A job tool that does nothing: measures the job machinery alone. */
export const noopJob = defineTool({
  kind: "job",
  name: "noop_job",
  description: "does nothing",
  input: z.strictObject({}),
  output: z.strictObject({}),
  handler: async () => ({}),
});
