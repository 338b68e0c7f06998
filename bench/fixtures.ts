import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { canonicalize, joinCanonicalObject, quoteString } from "../src/protocol/canonical.js";
import { ED25519_SECRET_PREFIX, type Key, publicKeyOf, toKeys } from "../src/protocol/keys.js";
import { signCanonical, signMessage } from "../src/protocol/sign.js";
import { defineTool } from "../src/tools/define.js";

// Fixed Ed25519 seeds, so every run (and a server started by hand) uses the same keys.
const seed = (label: string) => `${ED25519_SECRET_PREFIX}${createHash("sha256").update(label).digest("base64url")}`;
const ED25519_CLIENT_SECRET = seed("smcp bench ed25519 client");
const ED25519_SERVER_SECRET = seed("smcp bench ed25519 server");

/** The keys every benchmark uses (client and server id `bench`): HMAC secrets, and an Ed25519 pair each side. */
export const BENCH = {
  serverSecret: "bench-server-secret-0123456789",
  clientSecret: "bench-client-secret-0123456789",
  ed25519ServerSecret: ED25519_SERVER_SECRET,
  ed25519ServerPublic: publicKeyOf(ED25519_SERVER_SECRET, "bench server"),
  ed25519ClientSecret: ED25519_CLIENT_SECRET,
  ed25519ClientPublic: publicKeyOf(ED25519_CLIENT_SECRET, "bench client"),
} as const;

/** Which of the bench client's keys signs: its HMAC secret, or its Ed25519 key. */
export type BenchAlg = "hmac" | "ed25519";

const KEYS: Record<BenchAlg, Key> = {
  hmac: toKeys(BENCH.clientSecret, "bench")[0] as Key,
  ed25519: toKeys(BENCH.ed25519ClientSecret, "bench")[0] as Key,
};

/** The arguments of every load benchmark's `batch_sum`. */
export const BATCH_NUMBERS = [1.5, 2.25, 3, 4.75, 5, 6.5, 7, 8.125, 9, 10];

/** A unique envelope (own nonce; ts_ms now unless given) signed by the bench client. */
export function benchEnvelope(tool: string, args: Record<string, unknown>, tsMs = Date.now(), alg: BenchAlg = "hmac"): string {
  return signMessage(
    {
      v: "mcp/0.1",
      request_id: randomUUID(),
      ts_ms: tsMs,
      client_id: "bench",
      server_id: "bench",
      tool,
      args,
      nonce: randomUUID(),
    },
    KEYS[alg],
  ).body;
}

/**
 * Signs an envelope given each field's canonical text: for bodies the
 * canonicalizer would refuse to build (hostile inputs) and for bulk signing
 * with constant args. Returns the canonical body with its signature.
 */
export function signFields(fields: Readonly<Record<string, string>>, alg: BenchAlg = "hmac"): string {
  const entries = Object.entries(fields);
  const signature = signCanonical(KEYS[alg], joinCanonicalObject(entries));
  entries.push(["signature", quoteString(signature)]);
  return joinCanonicalObject(entries);
}

/** The canonical text of the fixed envelope fields of the bench client, for {@link signFields}. */
export function envelopeFields(tool: string, argsText: string, tsMs = Date.now()): Record<string, string> {
  return {
    v: quoteString("mcp/0.1"),
    request_id: quoteString(randomUUID()),
    ts_ms: String(tsMs),
    client_id: quoteString("bench"),
    server_id: quoteString("bench"),
    tool: quoteString(tool),
    args: argsText,
    nonce: quoteString(randomUUID()),
  };
}

/** A signer of unique envelopes for one tool and args, canonicalized once (what bulk pre-signing uses). */
export function envelopeSigner(tool: string, args: Record<string, unknown>, alg: BenchAlg = "hmac"): (tsMs: number) => string {
  const argsText = canonicalize(args);
  return (tsMs) => signFields(envelopeFields(tool, argsText, tsMs), alg);
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
