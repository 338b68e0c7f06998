import { existsSync } from "node:fs";
import { SmcpUsageError } from "../protocol/errors.js";
import { isEd25519Secret, isEd25519Text } from "../protocol/keys.js";
import { createClient, type SmcpClient } from "./client.js";
import { httpTransport } from "./http.js";
import { DEFAULT_SERVER_ID, DEFAULT_URL, type KeyringFile, keyringPath, readKeyringFile } from "./keyring-file.js";
import { serversPath, serverUrl } from "./servers-file.js";

/** What a caller is, resolved: who signs, who must answer, and where. */
export interface CallerSettings {
  clientId: string;
  clientSecret: string;
  serverId: string;
  /** The server's key(s) the answers must verify with: its pinned `ed25519:` key, or its HMAC secret. */
  serverKey: string[];
  url: string;
}

/** Values that win over the environment and the files (the CLI's flags). */
export interface CallerOverrides {
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  serverId?: string | undefined;
  serverKey?: readonly string[] | undefined;
  url?: string | undefined;
  /** The keyring file (default: SMCP_CONFIG, then `.smcp/keyring.json`). */
  config?: string | undefined;
}

/**
 * Resolves a caller the way `smcp call` does: explicit values, then the
 * environment (`SMCP_URL`, `SMCP_CLIENT_ID`, `SMCP_CLIENT_SECRET`,
 * `SMCP_SERVER_ID`, `SMCP_SERVER_KEY`/`SMCP_SERVER_SECRET`, `SMCP_CONFIG`),
 * then the folder's files (`.smcp/servers.json` for where the server listens,
 * the keyring file for keys), then defaults. A keyring file named with
 * `config` (the CLI's `--config`) must exist.
 */
export function resolveCaller(overrides: CallerOverrides = {}, env: NodeJS.ProcessEnv = process.env): CallerSettings {
  const path = keyringPath(overrides.config, env);
  // A file named outright (--config) must exist; SMCP_CONFIG naming none means "no file", as the default does.
  if (overrides.config !== undefined && !existsSync(path)) {
    throw new SmcpUsageError(`the keyring file ${path} does not exist (from --config); check the path`);
  }
  const file = readKeyringFile(path);
  const missing = (what: string, flag: string, variable: string) =>
    new SmcpUsageError(
      `missing ${what}: pass ${flag} or set ${variable} (or run \`smcp serve\` in this folder to create .smcp/keyring.json)`,
    );
  const clientId = overrides.clientId ?? env.SMCP_CLIENT_ID ?? file?.clients.keys().next().value;
  if (clientId === undefined) throw missing("client id", "--client-id ID", "SMCP_CLIENT_ID");
  // The file: an Ed25519 client's private key, else the first HMAC key of its record (never a public key).
  const fileSecret = file?.client_secrets.get(clientId) ?? file?.clients.get(clientId)?.find((k) => !isEd25519Text(k));
  const clientSecret = overrides.clientSecret ?? env.SMCP_CLIENT_SECRET ?? fileSecret;
  if (clientSecret === undefined) throw missing(`secret for client '${clientId}'`, "--client-secret S", "SMCP_CLIENT_SECRET");
  const serverId = overrides.serverId ?? env.SMCP_SERVER_ID ?? file?.server_id ?? DEFAULT_SERVER_ID;
  const serverKey = serverKeyOf(overrides.serverKey, env, file, isEd25519Secret(clientSecret));
  if (serverKey === undefined) throw missing("server key", "--server-key KEY", "SMCP_SERVER_KEY");
  const url = overrides.url ?? env.SMCP_URL ?? serverUrl(serversPath(path), serverId) ?? file?.url ?? DEFAULT_URL;
  return { clientId, clientSecret, serverId, serverKey, url };
}

function serverKeyOf(
  given: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
  file: KeyringFile | undefined,
  ed25519Client: boolean,
): string[] | undefined {
  if (given && given.length > 0) return [...given];
  const fromEnv = env.SMCP_SERVER_KEY ?? env.SMCP_SERVER_SECRET;
  if (fromEnv !== undefined) return [fromEnv];
  // From the file, the kind that fits the client: `server_key` for an Ed25519 client, the HMAC entries of `server_secret` for an HMAC one.
  const fromFile = ed25519Client ? file?.server_key : file?.server_secret.filter((k) => !isEd25519Text(k));
  return fromFile && fromFile.length > 0 ? fromFile : undefined;
}

/**
 * A client configured as `smcp call` would be in this process's environment
 * and folder (see {@link resolveCaller}), over HTTP. The TS twin of Python's
 * `Client.from_env()`.
 */
export function clientFromEnv(
  overrides: CallerOverrides & { timeoutMs?: number } = {},
  env: NodeJS.ProcessEnv = process.env,
): SmcpClient {
  const caller = resolveCaller(overrides, env);
  return createClient({
    clientId: caller.clientId,
    clientSecret: caller.clientSecret,
    serverId: caller.serverId,
    serverKey: caller.serverKey,
    transport: httpTransport(caller.url, overrides.timeoutMs === undefined ? {} : { timeoutMs: overrides.timeoutMs }),
  });
}
