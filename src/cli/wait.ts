import type { SmcpClient } from "../client/client.js";
import { SmcpUsageError } from "../protocol/errors.js";
import type { ResponseMessage } from "../protocol/messages.js";
import { parseCommand } from "./args.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, talk } from "./connect.js";
import type { CliIO } from "./io.js";
import { describeProgress, oneLine, report } from "./output.js";

/** `smcp wait --help`. */
export const WAIT_HELP = `usage: smcp wait JOB_ID [options]

Follows a job this client started (e.g. with \`smcp call TOOL ARGS\` without
--wait) until it ends, showing its progress; prints its result. Ctrl-C
cancels the job.

  --json                 print the final verified response object on stdout

exit status: 0 the job is done; 1 it ended in error (or was cancelled); 2 usage
or transport errors, or an answer that failed verification.

${CONNECTION_HELP}`;

/** `smcp wait JOB_ID`. */
export async function waitCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    { name: "wait", help: WAIT_HELP, options: { ...CONNECTION_FLAGS, json: { type: "boolean" } }, positionals: true },
    argv,
    io,
  );
  if (!flags) return 0;
  const [jobId, ...extra] = flags.positionals;
  if (jobId === undefined) throw new SmcpUsageError("missing JOB_ID: smcp wait JOB_ID (see `smcp wait --help`)");
  if (extra.length > 0) throw new SmcpUsageError(`unexpected argument '${extra[0]}' (see \`smcp wait --help\`)`);
  const connection = connect(flags, io);
  return talk(connection, io, async (client) => {
    const response = await waitWithProgress(client, jobId, io);
    if (flags.boolean("json")) io.out(connection.lastAnswer());
    return report(response, io, flags.boolean("json"));
  });
}

/**
 * Waits for a job, showing its progress on stderr (a bar rewritten in place
 * on a TTY, a line per change otherwise); Ctrl-C cancels the job and
 * returns its verified state after the cancel.
 */
export async function waitWithProgress(client: SmcpClient, jobId: string, io: CliIO, version?: number): Promise<ResponseMessage> {
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSigint);
  let last = "";
  try {
    return await client.waitForJob(jobId, {
      signal: controller.signal,
      ...(version === undefined ? {} : { version }),
      onRateLimited: (ms) => io.err(`rate limited; retrying in ${(ms / 1000).toFixed(1)} s`),
      onProgress: (progress, state, answer) => {
        const note = typeof answer.note === "string" ? ` (${oneLine(answer.note, 100)})` : "";
        const line = `${describeProgress(progress, state)}${note}`;
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
