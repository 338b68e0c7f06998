import type { JsonObject } from "../protocol/canonical.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { isJsonObject } from "../protocol/messages.js";
import { parseJson } from "../protocol/parse.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, talk } from "./connect.js";
import type { CliIO } from "./io.js";
import { report } from "./output.js";
import { waitWithProgress } from "./wait.js";

/** `smcp call --help`. */
export const CALL_HELP = `usage: smcp call TOOL [ARGS_JSON] [options]

Signs a call, sends it, verifies the answer (signature, request_id,
server_id, freshness) and prints the result.

  --wait                 follow a job to its end (progress on stderr; Ctrl-C cancels the job)
  --json                 print the whole verified response object on stdout

Without --wait a job tool prints {"job_id": …}; \`smcp wait JOB_ID\` follows it
later and \`smcp jobs\` lists this client's jobs.

exit status: 0 the verified response has ok: true; 1 a verified error
response; 2 the answer failed verification, the transport failed, or usage was wrong.

${CONNECTION_HELP}`;

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
  const json = flags.boolean("json");
  const connection = connect(flags, io);
  return talk(connection, io, async (client) => {
    let response = await client.request(tool, args, {
      rateLimitRetries: 5,
      onRateLimited: (ms) => io.err(`rate limited; retrying in ${(ms / 1000).toFixed(1)} s`),
    });
    if (flags.boolean("wait") && response.status === "accepted" && typeof response.result?.job_id === "string") {
      const jobId = response.result.job_id;
      if (!json) io.err(`job ${jobId} accepted; waiting (Ctrl-C cancels it)`);
      response = await waitWithProgress(client, jobId, io, 1); // just accepted: version 1
    }
    if (json) io.out(connection.lastAnswer());
    return report(response, io, json);
  });
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
