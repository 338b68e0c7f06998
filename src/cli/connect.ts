import { createClient, type SmcpClient } from "../client/client.js";
import { httpTransport } from "../client/http.js";
import { parseLossless } from "../protocol/canonical.js";
import { SmcpError, SmcpUsageError } from "../protocol/errors.js";
import { isEd25519Secret, isEd25519Text } from "../protocol/keys.js";
import type { Flags } from "./args.js";
import { DEFAULT_SERVER_ID, DEFAULT_URL, type KeyringFile, keyringPath, parseInteger, readKeyringFile } from "./config.js";
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

/** Builds a client from flags, environment and the keyring file. */
export function connect(flags: Flags, io: CliIO): Connection {
  const env = io.env;
  const file = readKeyringFile(keyringPath(flags.string("config"), env));
  const clientId = flags.string("client-id") ?? env.SMCP_CLIENT_ID ?? file?.clients.keys().next().value;
  const missing = (what: string, flag: string, variable: string) =>
    new SmcpUsageError(
      `missing ${what}: pass ${flag} or set ${variable} (or run \`smcp serve\` in this folder to create .smcp/keyring.json)`,
    );
  if (clientId === undefined) throw missing("client id", "--client-id ID", "SMCP_CLIENT_ID");
  // The file: an Ed25519 client's private key, else the first HMAC key of its record (never a public key).
  const fileSecret = file?.client_secrets.get(clientId) ?? file?.clients.get(clientId)?.find((k) => !isEd25519Text(k));
  const clientSecret = flags.string("client-secret") ?? env.SMCP_CLIENT_SECRET ?? fileSecret;
  if (clientSecret === undefined) throw missing(`secret for client '${clientId}'`, "--client-secret S", "SMCP_CLIENT_SECRET");
  const serverId = flags.string("server-id") ?? env.SMCP_SERVER_ID ?? file?.server_id ?? DEFAULT_SERVER_ID;
  const serverKey = resolveServerKey(flags, env, file, isEd25519Secret(clientSecret));
  if (serverKey === undefined) throw missing("server key", "--server-key KEY", "SMCP_SERVER_KEY");
  const url = flags.string("url") ?? env.SMCP_URL ?? file?.url ?? DEFAULT_URL;
  const timeout = flags.string("timeout-ms");
  const timeoutMs = timeout === undefined ? 30_000 : parseInteger(timeout, "--timeout-ms", 1, 3_600_000);
  const transport = httpTransport(url, { timeoutMs });
  // A long poll must end before the transport gives up on it.
  const longPollMs = Math.max(0, Math.min(20_000, timeoutMs - 2_000));
  let last: string | Uint8Array = "";
  const client = createClient({
    clientId,
    clientSecret,
    serverId,
    serverKey,
    transport,
    longPollMs,
    onResponse: (_response, body) => {
      last = body;
    },
  });
  return {
    client,
    url,
    lastAnswer: () => parseLossless(last).canonical,
    longPollMs,
    verification: isEd25519Secret(clientSecret) ? "ed25519" : "hmac-sha256",
  };
}

/**
 * The server key(s) a caller verifies with: `--server-key` (alias
 * `--server-secret`), then SMCP_SERVER_KEY, SMCP_SERVER_SECRET, then the file.
 * From the file, the kind that fits the client: `server_key` for an Ed25519
 * client, the HMAC entries of `server_secret` for an HMAC one.
 */
function resolveServerKey(
  flags: Flags,
  env: NodeJS.ProcessEnv,
  file: KeyringFile | undefined,
  ed25519Client: boolean,
): string[] | undefined {
  const keyFlags = flags.list("server-key");
  const secretFlags = flags.list("server-secret");
  if (keyFlags.length > 0 && secretFlags.length > 0) {
    throw new SmcpUsageError("give --server-key or --server-secret (the same flag by its former name), not both");
  }
  if (keyFlags.length > 0 || secretFlags.length > 0) return [...keyFlags, ...secretFlags];
  const fromEnv = env.SMCP_SERVER_KEY ?? env.SMCP_SERVER_SECRET;
  if (fromEnv !== undefined) return [fromEnv];
  const fromFile = ed25519Client ? file?.server_key : file?.server_secret.filter((k) => !isEd25519Text(k));
  return fromFile && fromFile.length > 0 ? fromFile : undefined;
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
