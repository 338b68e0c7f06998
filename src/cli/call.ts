import { type ClientOptions, createClient, type SmcpClient } from "../client/client.js";
import { httpTransport } from "../client/http.js";
import { canonicalize, type JsonObject, parseJson, parseLossless } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import type { ResponseMessage } from "../protocol/messages.js";
import { isJsonObject } from "../protocol/messages.js";
import { type Flags, parseCommand } from "./args.js";
import { DEFAULT_URL, keyringPath, parseInteger, readKeyringFile } from "./config.js";
import { type CliIO, pretty } from "./io.js";

/** Flags shared by the commands that talk to a server. */
export const CONNECTION_FLAGS = {
  url: { type: "string" },
  "client-id": { type: "string" },
  "client-secret": { type: "string" },
  "server-id": { type: "string" },
  "server-secret": { type: "string" },
  config: { type: "string" },
  "timeout-ms": { type: "string" },
} as const;

/** Help text for the connection flags. */
export const CONNECTION_HELP = `connection (flags win over environment, environment over the keyring file):
  --url URL              server endpoint           SMCP_URL            default ${DEFAULT_URL}
  --client-id ID         who signs                 SMCP_CLIENT_ID      default: the file's first client
  --client-secret S      this client's secret      SMCP_CLIENT_SECRET
  --server-id ID         who must answer           SMCP_SERVER_ID
  --server-secret S      verifies the answers      SMCP_SERVER_SECRET
  --config PATH          keyring file              SMCP_CONFIG         default .smcp/keyring.json
  --timeout-ms N         per-request timeout       default 30000`;

/** `smcp call --help`. */
export const CALL_HELP = `usage: smcp call TOOL [ARGS_JSON] [options]

Signs a call, sends it, verifies the answer (signature, request_id,
server_id, freshness) and prints the result.

  --wait                 poll a job to its end (progress on stderr; Ctrl-C cancels the job)
  --json                 print the whole verified response object on stdout

exit status: 0 the verified response has ok: true; 1 a verified error
response; 2 the answer failed verification, the transport failed, or usage was wrong.

${CONNECTION_HELP}`;

/** Builds a client from flags, environment and the keyring file. */
export function clientFromFlags(flags: Flags, io: CliIO, onResponse?: ClientOptions["onResponse"]): SmcpClient {
  const env = io.env;
  const file = readKeyringFile(keyringPath(flags.string("config"), env));
  const clientId = flags.string("client-id") ?? env.SMCP_CLIENT_ID ?? file?.clients.keys().next().value;
  const missing = (what: string, flag: string, variable: string) =>
    new SmcpUsageError(
      `missing ${what}: pass ${flag} or set ${variable} (or run \`smcp serve\` in this folder to create .smcp/keyring.json)`,
    );
  if (clientId === undefined) throw missing("client id", "--client-id ID", "SMCP_CLIENT_ID");
  const clientSecret = flags.string("client-secret") ?? env.SMCP_CLIENT_SECRET ?? file?.clients.get(clientId);
  if (clientSecret === undefined) throw missing(`secret for client '${clientId}'`, "--client-secret S", "SMCP_CLIENT_SECRET");
  const serverId = flags.string("server-id") ?? env.SMCP_SERVER_ID ?? file?.server_id;
  if (serverId === undefined) throw missing("server id", "--server-id ID", "SMCP_SERVER_ID");
  const serverSecret = flags.string("server-secret") ?? env.SMCP_SERVER_SECRET ?? file?.server_secret;
  if (serverSecret === undefined) throw missing("server secret", "--server-secret S", "SMCP_SERVER_SECRET");
  const url = flags.string("url") ?? env.SMCP_URL ?? file?.url ?? DEFAULT_URL;
  const timeout = flags.string("timeout-ms");
  const timeoutMs = timeout === undefined ? 30_000 : parseInteger(timeout, "--timeout-ms", 1, 3_600_000);
  const transport = httpTransport(url, { timeoutMs });
  return createClient({ clientId, clientSecret, serverId, serverSecret, transport, ...(onResponse ? { onResponse } : {}) });
}

/** `smcp call TOOL [ARGS_JSON]`. */
export async function callCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "call",
      help: CALL_HELP,
      options: { ...CONNECTION_FLAGS, wait: { type: "boolean" }, json: { type: "boolean" } },
      positionals: true,
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const [tool, argsText, ...extra] = flags.positionals;
  if (tool === undefined) throw new SmcpUsageError("missing TOOL: smcp call TOOL [ARGS_JSON] (see `smcp call --help`)");
  if (extra.length > 0) throw new SmcpUsageError(`unexpected argument '${extra[0]}'; quote ARGS_JSON as one argument`);
  const args = parseArgsJson(argsText);
  // --json prints the last verified message in canonical form from its own text (the seed's 6.0 stays 6.0).
  let lastBody: string | Uint8Array = "";
  const client = clientFromFlags(flags, io, (_response, body) => {
    lastBody = body;
  });
  let response = await client.request(tool, args);
  if (flags.boolean("wait") && response.status === "accepted" && typeof response.result?.job_id === "string") {
    const jobId = response.result.job_id;
    if (!flags.boolean("json")) io.err(`job ${jobId} accepted; waiting (Ctrl-C cancels it)`);
    response = await waitWithProgress(client, jobId, io);
  }
  if (flags.boolean("json")) io.out(parseLossless(lastBody).canonical);
  return report(response, io, flags.boolean("json"));
}

function parseArgsJson(text: string | undefined): JsonObject {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (error) {
    throw new SmcpUsageError(`ARGS_JSON is not valid JSON (${(error as Error).message}); e.g. '{"numbers":[1,2]}'`);
  }
  if (!isJsonObject(value)) throw new SmcpUsageError(`ARGS_JSON must be a JSON object, e.g. '{"numbers":[1,2]}'`);
  return value;
}

async function waitWithProgress(client: SmcpClient, jobId: string, io: CliIO): Promise<ResponseMessage> {
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSigint);
  let last = "";
  try {
    return await client.waitForJob(jobId, {
      signal: controller.signal,
      onProgress: (progress, state) => {
        const line = describeProgress(progress, state);
        if (line === last) return;
        last = line;
        if (io.tty) io.status(line);
        else io.err(line);
      },
    });
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    // Ctrl-C: waitForJob has cancelled the job; report its verified state.
    return await client.poll(jobId);
  } finally {
    process.off("SIGINT", onSigint);
    if (io.tty && last !== "") io.status("");
  }
}

/** One line for a job's progress: a bar when it reports `done`/`total`, else its JSON. */
export function describeProgress(progress: JsonObject | null, state: string): string {
  const done = progress?.done ?? progress?.current;
  const total = progress?.total;
  if (typeof done === "number" && typeof total === "number" && total > 0) {
    const width = 24;
    const filled = Math.max(0, Math.min(width, Math.round((done / total) * width)));
    return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
  }
  return progress ? `${state} ${canonicalize(progress)}` : state;
}

function report(response: ResponseMessage, io: CliIO, json: boolean): number {
  if (json) return response.ok ? 0 : 1;
  if (response.ok) io.out(pretty(response.result ?? {}));
  else {
    io.err(`error: ${response.error ?? "(no message)"}`);
    const details = response.result?.details;
    if (details !== undefined) io.err(pretty(details));
  }
  return response.ok ? 0 : 1;
}
