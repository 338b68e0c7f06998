import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConsoleBackend } from "../console/backend.js";
import { MetricsSampler } from "../console/metrics.js";
import { startConsole } from "../console/server.js";
import { SmcpUsageError } from "../protocol/errors.js";
import { redactUrl } from "../util/redact.js";
import { parseCommand } from "./args.js";
import { parseInteger } from "./config.js";
import { CONNECTION_FLAGS, CONNECTION_HELP, connect } from "./connect.js";
import { type CliIO, stopSignal } from "./io.js";

/** `smcp console --help`. */
export const CONSOLE_HELP = `usage: smcp console [--port N] [--open] [--metrics-url URL] [options]

A web console for a server's tools and jobs, on 127.0.0.1 only. It prints
one line, \`console: http://127.0.0.1:PORT/?token=TOKEN\`: open that URL
(the token, new each run, is required on every request). The console is a
signed client like \`smcp call\`: keys stay in this process, the page talks
only to the console, and every answer it shows was verified with the
server's key. Runs until SIGINT or SIGTERM.

  --port N               port on 127.0.0.1 (0: any free one)         default 0
  --open                 open the console in the desktop's browser
  --metrics-url URL      the server's Prometheus metrics (charts of request
                         rate, errors, latency)    default: /metrics beside --url

${CONNECTION_HELP}`;

/** `smcp console`. */
export async function consoleCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseCommand(
    {
      name: "console",
      help: CONSOLE_HELP,
      options: { ...CONNECTION_FLAGS, port: { type: "string" }, open: { type: "boolean" }, "metrics-url": { type: "string" } },
    },
    argv,
    io,
  );
  if (!flags) return 0;
  const port = parseInteger(flags.string("port") ?? "0", "--port", 0, 65535);
  const connection = connect(flags, io);
  const metricsUrl = flags.string("metrics-url") ?? new URL("/metrics", connection.url).toString();
  try {
    if (!/^https?:$/.test(new URL(metricsUrl).protocol)) throw new Error();
  } catch {
    throw new SmcpUsageError(`--metrics-url '${metricsUrl}' is not an http(s) URL`);
  }
  const metrics = new MetricsSampler(metricsUrl);
  const backend = new ConsoleBackend({
    client: connection.client,
    url: redactUrl(connection.url),
    verification: connection.verification,
    longPollMs: connection.longPollMs,
    metrics,
  });
  const running = await startConsole({ backend, metrics, port });
  // Listen for the stop before anyone can know we are up (the URL line, the browser opening): a signal sent
  // as soon as they see it would otherwise find no handler and kill the process without closing.
  const stopping = stopSignal();
  // The one stdout line: scripts (and tests) read the URL from it.
  io.out(`console: ${running.url}`);
  io.err(`signing as '${connection.client.clientId}', verifying answers from ${redactUrl(connection.url)}; Ctrl-C stops`);
  let opened: string | undefined;
  if (flags.boolean("open")) opened = openInBrowser(running.url, io);
  const signal = await stopping;
  io.err(`${signal}: closing the console`);
  await running.close();
  if (opened) rmSync(opened, { recursive: true, force: true });
  return 0;
}

/**
 * Opens the console in the desktop's browser. The token must not appear on a
 * command line (any user of a shared machine can read another's process
 * list), so the browser is given a private file (mode 0600 in a 0700
 * folder) that redirects to the URL. Returns the folder, removed at exit.
 */
function openInBrowser(url: string, io: CliIO): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), "smcp-console-"));
  const file = join(dir, "open.html");
  writeFileSync(
    file,
    `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0;url=${url}"><title>smcp console</title>`,
    { mode: 0o600 },
  );
  const [command, args] =
    process.platform === "darwin"
      ? ["open", [file]]
      : process.platform === "win32"
        ? ["cmd", ["/c", "start", "", file]]
        : ["xdg-open", [file]];
  try {
    const child = spawn(command, args as string[], { stdio: "ignore", detached: true });
    child.on("error", () => io.err(`could not start ${command}: open the URL above yourself`));
    child.unref();
  } catch {
    io.err(`could not start ${command}: open the URL above yourself`);
  }
  return dir;
}
