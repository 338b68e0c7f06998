import { createClient, type SmcpClient } from "../client/client.js";
import { resolveCaller } from "../client/env.js";
import { undiciTransport } from "../client/undici.js";
import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { isEd25519Secret } from "../protocol/keys.js";
import { parseLossless } from "../protocol/parse.js";
import type { Flags } from "./args.js";
import { DEFAULT_SERVER_ID, DEFAULT_URL, parseInteger } from "./config.js";
import type { CliIO } from "./io.js";
import { describeFailure } from "./output.js";

/** Flags shared by the commands that talk to a server. */
export const CONNECTION_FLAGS = {
  url: { type: "string" },
  "client-id": { type: "string" },
  "client-secret": { type: "string" },
  "server-id": { type: "string" },
  "server-key": { type: "string", multiple: true },
  "server-secret": { type: "string", multiple: true },
  config: { type: "string" },
  "timeout-ms": { type: "string" },
} as const;

/** Help text for the connection flags. */
export const CONNECTION_HELP = `connection (flags win over environment, environment over the keyring file):
  --url URL              server endpoint           SMCP_URL            default ${DEFAULT_URL}
  --client-id ID         who signs                 SMCP_CLIENT_ID      default: the file's first client
  --client-secret S      this client's key: an HMAC secret or ed25519-secret:…
                                                   SMCP_CLIENT_SECRET
  --server-id ID         who must answer           SMCP_SERVER_ID      default ${DEFAULT_SERVER_ID}
  --server-key KEY       verifies the answers: the server's pinned public key
                         ed25519:… or its HMAC secret (repeatable, for rotation)
                                                   SMCP_SERVER_KEY
  --server-secret S      the same as --server-key  SMCP_SERVER_SECRET
  --config PATH          keyring file              SMCP_CONFIG         default .smcp/keyring.json
  --timeout-ms N         per-request timeout       default 30000`;

/** A client built from flags, environment and the keyring file, and the URL it talks to. */
export interface Connection {
  client: SmcpClient;
  url: string;
  /** The last verified answer in canonical form, from the bytes received (the seed's `6.0` stays `6.0`). */
  lastAnswer(): string;
  /** How long one long poll may wait: below the transport's timeout, so the poll ends first. */
  longPollMs: number;
  /** How answers are verified: with the server's pinned Ed25519 public key, or its HMAC secret (the client's algorithm). */
  verification: "ed25519" | "hmac-sha256";
}

/** Builds a client from flags, environment and the folder's files (`resolveCaller`: the same rules as `clientFromEnv`). */
export function connect(flags: Flags, io: CliIO): Connection {
  const keyFlags = flags.list("server-key");
  const secretFlags = flags.list("server-secret");
  if (keyFlags.length > 0 && secretFlags.length > 0) {
    throw new SmcpUsageError("give --server-key or --server-secret (the same flag by its former name), not both");
  }
  const caller = resolveCaller(
    {
      clientId: flags.string("client-id"),
      clientSecret: flags.string("client-secret"),
      serverId: flags.string("server-id"),
      serverKey: [...keyFlags, ...secretFlags],
      url: flags.string("url"),
      config: flags.string("config"),
    },
    io.env,
  );
  const timeout = flags.string("timeout-ms");
  const timeoutMs = timeout === undefined ? 30_000 : parseInteger(timeout, "--timeout-ms", 1, 3_600_000);
  const transport = undiciTransport(caller.url, { timeoutMs });
  // A long poll must end before the transport gives up on it.
  const longPollMs = Math.max(0, Math.min(20_000, timeoutMs - 2_000));
  let last: string | Uint8Array = "";
  const client = createClient({
    clientId: caller.clientId,
    clientSecret: caller.clientSecret,
    serverId: caller.serverId,
    serverKey: caller.serverKey,
    transport,
    longPollMs,
    onResponse: (_response, body) => {
      last = body;
    },
  });
  return {
    client,
    url: caller.url,
    lastAnswer: () => parseLossless(last).canonical,
    longPollMs,
    verification: isEd25519Secret(caller.clientSecret) ? "ed25519" : "hmac-sha256",
  };
}

/**
 * Runs a command that talks to a server: an error that is not a verified
 * answer (transport down, answer failed verification) is printed as one line
 * with a hint naming the fix, and the command exits 2.
 */
export async function talk(connection: Connection, io: CliIO, run: (client: SmcpClient) => Promise<number>): Promise<number> {
  try {
    return await run(connection.client);
  } catch (error) {
    if (!(error instanceof SmcpError)) throw error;
    for (const line of describeFailure(error, connection.url)) io.err(line);
    return 2;
  }
}
