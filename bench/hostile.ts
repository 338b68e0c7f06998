// Hostile inputs (issue 8) against `smcp serve --store memory` over HTTP,
// each at most 1 MiB, unauthenticated and signed, written byte for byte on
// a fresh connection. For each: the HTTP status, the answer's size, whether
// the answer carries text from the input (a marker put in it), and the worst
// event-loop block it caused: from outside, the slowest answer of a /healthz
// probe sent about every millisecond from another thread; from inside, the
// server's own event-loop delay gauge when it serves /metrics (else n/a).
//
// Usable on an older build for "before" figures (--smcp ../old/dist/cli/main.js):
// it needs no new server flag, survives a server that never answers (client
// timeout, then the server is killed and restarted for the next input), and
// reports that as "no answer". Bounded: one pass over the inputs.
//
//   node --import tsx bench/hostile.ts [--smcp PATH] [--target URL] [--timeout-ms 30000] [--only SUBSTRING]
//
// --parse (issue 22, item 7): no server; in this process, the lossless parse of each body (as the server runs it:
// bytes in, the signature left out of the canonical text) against V8's JSON.parse of the same bytes, the two
// interleaved for --repeat rounds (taking turns to go first): each side's median time, and the median ratio.
// --dist parses with the built dist/ (npm run build first), as the server does.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { canonicalize, quoteString } from "../src/protocol/canonical.js";
import { BATCH_NUMBERS, envelopeFields, signFields } from "./fixtures.js";
import { pinSelf, type RunningPeer, rssOf } from "./peer.js";
import { HealthProber } from "./probe.js";
import { exchange } from "./rawhttp.js";
import { DEFAULT_SMCP, fetchMetrics, metricValue, serveHasFlag, startSmcp } from "./smcp.js";

const { values } = parseArgs({
  options: {
    smcp: { type: "string", default: DEFAULT_SMCP },
    // A server already running with the bench keys (it cannot be restarted if an input hangs it).
    target: { type: "string" },
    // How long to wait for an answer, and for /healthz to answer again afterwards before calling the server hung.
    "timeout-ms": { type: "string", default: "30000" },
    "hang-ms": { type: "string", default: "10000" },
    // Keep probing this long after the answer, to catch work done after it (freeing, GC).
    "tail-ms": { type: "string", default: "200" },
    only: { type: "string" },
    parse: { type: "boolean", default: false },
    repeat: { type: "string", default: "15" },
    dist: { type: "boolean", default: false },
  },
});
const TIMEOUT_MS = Number(values["timeout-ms"]);
const HANG_MS = Number(values["hang-ms"]);
const TAIL_MS = Number(values["tail-ms"]);
/** The default body cap of smcp serve: every input fits in it. */
const CAP = 1024 * 1024;
/** Put in the inputs; found in an answer, it means the answer reflects input. */
const MARK = `zq${randomBytes(4).toString("hex")}`;
const NUMBERS = canonicalize({ numbers: BATCH_NUMBERS });

interface Case {
  name: string;
  /** The exact request bytes, built before the measurement starts. */
  build: (port: number) => Buffer;
  /** What to search the answer for; undefined: nothing of the input could be recognised. */
  marker?: string;
  timeoutMs?: number;
}

/** A POST with Connection: close; `contentLength` may lie on purpose. */
function post(port: number, body: string, options: { target?: string; contentLength?: number } = {}): Buffer {
  const bytes = Buffer.from(body, "utf8");
  const head =
    `POST ${options.target ?? "/mcp"} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${options.contentLength ?? bytes.length}\r\nConnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}

/** A signed envelope whose args are given as text (any text: the signature is over the canonical form around it). */
function signed(tool: string, argsText: string): string {
  return signFields(envelopeFields(tool, argsText));
}

/** The largest `make(n)` that fits the body cap (bodies grow by a fixed width per n). */
function fit(make: (n: number) => string): string {
  const size = (n: number) => Buffer.byteLength(make(n));
  const base = size(0);
  let n = Math.floor(((CAP - base) * 1000) / (size(1000) - base));
  while (size(n) > CAP) n--;
  return make(n);
}

const pad = (i: number) => String(i).padStart(6, "0");
/** n unknown top-level keys, each with the marker and a terminal escape sequence. */
const escapeKeys = (n: number) => Array.from({ length: n }, (_, i) => `${MARK}_${pad(i)}\u001b[31m`);
const ESCAPES = '\u0000"\\\u{1F600}\u001b';

const CASES: Case[] = [
  { name: "valid batch_sum (control)", build: (port) => post(port, signed("batch_sum", NUMBERS)) },
  {
    name: "truncated envelope, 33 B, unsigned",
    build: (port) => post(port, '{"v":"mcp/0.1","request_id":"abc'),
    timeoutMs: 3000,
  },
  {
    name: "batch_sum of empty strings (1 MiB), signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":["${MARK}"${',""'.repeat(n)}]}`)),
      ),
  },
  {
    name: "unknown top-level keys with escape sequences, unsigned",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => {
          const base = { ...envelopeFields("batch_sum", NUMBERS), signature: quoteString("0".repeat(64)) };
          const extra = escapeKeys(n).map((k) => `${quoteString(k)}:1`);
          return `{${[...Object.entries(base).map(([k, v]) => `${quoteString(k)}:${v}`), ...extra].join(",")}}`;
        }),
      ),
  },
  {
    name: "unknown top-level keys with escape sequences, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) =>
          signFields({ ...envelopeFields("batch_sum", NUMBERS), ...Object.fromEntries(escapeKeys(n).map((k) => [k, "1"])) }),
        ),
      ),
  },
  ...[64, 65].map((depth) => ({
    name: `nesting ${depth} deep${depth === 64 ? " (the default limit)" : ""}, signed`,
    marker: MARK,
    // The envelope is depth 1, args 2, numbers 3: depth - 2 arrays.
    build: (port: number) =>
      post(port, signed("batch_sum", `{"numbers":${"[".repeat(depth - 2)}"${MARK}"${"]".repeat(depth - 2)}}`)),
  })),
  {
    name: "nesting 1 MiB deep, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":${"[".repeat(n + 1)}"${MARK}"${"]".repeat(n + 1)}}`)),
      ),
  },
  {
    name: "args with 100k keys, signed",
    marker: MARK,
    build: (port) => {
      const args = new Map<string, unknown>([
        ["numbers", [1]],
        [MARK, 0],
      ]);
      for (let i = 0; i < 100_000; i++) args.set(`k${i.toString(36).padStart(4, "0")}`, 0);
      return post(port, signed("batch_sum", canonicalize(Object.fromEntries(args))));
    },
  },
  {
    name: "1 MiB string of escapes and astral characters, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", canonicalize({ numbers: [1], [MARK]: ESCAPES.repeat(n) }))),
      ),
  },
  {
    name: "1 MiB of raw UTF-8 astral characters, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => {
          const value = "\u{1F600}".repeat(n);
          // Signed over the canonical (escaped) form, sent as raw UTF-8: the same JSON value.
          return signed("batch_sum", canonicalize({ numbers: [1], [MARK]: value })).replace(quoteString(value), () =>
            JSON.stringify(value),
          );
        }),
      ),
  },
  {
    name: "integer lexeme of 1 MiB digits, signed",
    marker: "9".repeat(40),
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":[1,${"9".repeat(n + 1)}]}`)),
      ),
  },
  {
    name: "float lexeme of 1 MiB digits, signed",
    marker: "5".repeat(40),
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":[1,1.${"5".repeat(n + 1)}e-7]}`)),
      ),
  },
  {
    name: "batch_sum of 1 MiB of integers, signed",
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":[${Array.from({ length: n + 1 }, (_, i) => i % 1000).join(",")}]}`)),
      ),
  },
  {
    name: "batch_sum of 1 MiB of floats, signed",
    build: (port) =>
      post(
        port,
        fit((n) => signed("batch_sum", `{"numbers":[${Array.from({ length: n + 1 }, (_, i) => `${i % 1000}.25`).join(",")}]}`)),
      ),
  },
  {
    name: "batch_sum of 1 MiB of floats in exponent form, signed",
    build: (port) =>
      post(
        port,
        fit((n) =>
          signed("batch_sum", `{"numbers":[${Array.from({ length: n + 1 }, (_, i) => `${(i % 1000) + 1}E-2`).join(",")}]}`),
        ),
      ),
  },
  {
    name: "objects of 10,000 members (the cap) in args, keys unsorted, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => {
          const objects = Array.from({ length: Math.max(1, Math.ceil(n / 10_000)) }, (_, o) => {
            const members = Array.from({ length: Math.min(10_000, n - o * 10_000) || 1 }, (_, i) => `"k${pad(9999 - i)}":0`);
            return `{${members.join(",")}}`;
          });
          return signed("batch_sum", `{"numbers":[1],"${MARK}":[${objects.join(",")}]}`);
        }),
      ),
  },
  {
    name: "1 MiB of whitespace around a batch_sum, signed",
    build: (port) =>
      post(
        port,
        fit((n) => `${" ".repeat(n)}${signed("batch_sum", NUMBERS)}`),
      ),
  },
  {
    name: "unknown tool name of 1 MiB, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => signed(`${MARK}${"x".repeat(n)}`, NUMBERS)),
      ),
  },
  {
    name: "poll_job of an unknown job id, signed",
    marker: MARK,
    build: (port) => post(port, signed("poll_job", canonicalize({ job_id: `${MARK}-no-such-job` }))),
  },
  {
    name: "poll_job of an unknown 1 MiB job id, signed",
    marker: MARK,
    build: (port) =>
      post(
        port,
        fit((n) => signed("poll_job", canonicalize({ job_id: `${MARK}${"j".repeat(n)}` }))),
      ),
  },
  {
    name: "Content-Length 33, shorter than the body",
    marker: MARK,
    build: (port) => post(port, signed("batch_sum", canonicalize({ numbers: [1], [MARK]: 1 })), { contentLength: 33 }),
  },
  {
    name: "Expect: 100-continue, Content-Length 1 MiB + 1, no body",
    build: (port) =>
      Buffer.from(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${CAP + 1}\r\n` +
          "Expect: 100-continue\r\nConnection: close\r\n\r\n",
        "latin1",
      ),
  },
  {
    name: "absolute-form target (POST http://host/mcp), valid batch_sum",
    build: (port) => post(port, signed("batch_sum", NUMBERS), { target: `http://127.0.0.1:${port}/mcp` }),
  },
];

interface Server {
  origin: string;
  port: number;
  peer?: RunningPeer;
}

if (values.parse) {
  // --dist: the built parser, as `smcp serve` runs it (no tsx transform in the way).
  const { parseLossless } = (await import(
    values.dist ? "../dist/protocol/parse.js" : "../src/protocol/parse.js"
  )) as typeof import("../src/protocol/parse.js");
  const REPEAT = Number(values.repeat);
  const once = (run: () => unknown): { ms: number; ok: boolean } => {
    const start = performance.now();
    try {
      run();
      return { ms: performance.now() - start, ok: true };
    } catch {
      return { ms: performance.now() - start, ok: false };
    }
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  /**
   * The two parses interleaved, one of each per round, taking turns to go first: a burst of noise on this
   * machine then lands on both sides of a ratio rather than on one side's whole series. The ratio is the
   * median of the rounds' ratios; the times, each side's median.
   */
  const pair = (ours: () => unknown, v8: () => unknown) => {
    const a: number[] = [];
    const b: number[] = [];
    const ratios: number[] = [];
    let oursOk = true;
    let v8Ok = true;
    for (let r = 0; r < REPEAT; r++) {
      let x: { ms: number; ok: boolean };
      let y: { ms: number; ok: boolean };
      if (r % 2 === 0) {
        x = once(ours);
        y = once(v8);
      } else {
        y = once(v8);
        x = once(ours);
      }
      oursOk &&= x.ok;
      v8Ok &&= y.ok;
      a.push(x.ms);
      b.push(y.ms);
      ratios.push(x.ms / y.ms);
    }
    return { ours: { ms: median(a), ok: oursOk }, v8: { ms: median(b), ok: v8Ok }, ratio: median(ratios) };
  };
  pinSelf(1);
  console.log(`\nlossless parse vs JSON.parse, in process, median of ${REPEAT}; bodies as the server gets them (bytes)\n`);
  console.log("| body | bytes | smcp parse ms | accepted | JSON.parse ms | JSON.parse accepts | ratio |");
  console.log("|---|---:|---:|---|---:|---|---:|");
  for (const c of CASES.filter((x) => !values.only || x.name.includes(values.only))) {
    const request = c.build(8787);
    const body = request.subarray(request.indexOf("\r\n\r\n") + 4);
    if (body.length === 0) continue;
    const { ours, v8, ratio } = pair(
      () => parseLossless(body, { omitTopLevelKey: "signature" }),
      () => JSON.parse(body.toString("utf8")),
    );
    console.log(
      `| ${c.name} | ${body.length} | ${ours.ms.toFixed(2)} | ${ours.ok ? "yes" : "no (refused)"} | ${v8.ms.toFixed(2)} | ${v8.ok ? "yes" : "no"} | ${ratio.toFixed(2)}x |`,
    );
  }
  process.exit(0);
}

const metricsFlag = !values.target && serveHasFlag("--metrics", values.smcp) ? ["--metrics"] : [];
async function startServer(): Promise<Server> {
  if (values.target) {
    const origin = new URL(values.target).origin;
    return { origin, port: Number(new URL(origin).port) };
  }
  const peer = await startSmcp({ store: "memory", bin: values.smcp, extra: metricsFlag });
  return { origin: peer.url, port: Number(new URL(peer.url).port), peer };
}

/** The server's own worst event-loop delay since its last scrape (prom-client's gauge), in ms; undefined without /metrics. */
async function insideWorstMs(origin: string): Promise<number | undefined> {
  const text = await fetchMetrics(origin, 2000);
  const seconds = text === undefined ? undefined : metricValue(text, "nodejs_eventloop_lag_max_seconds");
  return seconds === undefined ? undefined : seconds * 1000;
}

/** Waits until /healthz answers again (up to `limitMs`); false when the server stays silent. */
async function answersAgain(prober: HealthProber, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if ((await prober.read()).silentMs < 50) return true;
    if (Date.now() > deadline) return false;
    await sleep(20); // polling a reading, not synchronising on it: the prober thread keeps probing meanwhile
  }
}

const fmt = (ms: number | undefined) => (ms === undefined ? "n/a" : ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
const MB = 1024 * 1024;

pinSelf(1);
let server = await startServer();
const prober = new HealthProber();
prober.target(server.port);
if (!(await answersAgain(prober, 10_000))) throw new Error(`${server.origin} does not answer GET /healthz`);
// Warm-up: the control request a few times, so the first input does not pay for cold code.
for (let i = 0; i < 20; i++)
  await exchange({ port: server.port, request: CASES[0]?.build(server.port) as Buffer, timeoutMs: TIMEOUT_MS });

// What the probe shows with nothing sent: the noise floor of the machine.
prober.reset();
await sleep(1000);
const idleMs = (await prober.read()).worstMs;

/** Sends one input and measures it; the table row, and whether the server still answers. */
async function measure(c: Case): Promise<{ row: string; alive: boolean }> {
  const request = c.build(server.port);
  await answersAgain(prober, 1000);
  await insideWorstMs(server.origin); // a scrape resets the server's own gauge
  const pid = server.peer?.process.pid;
  const rssBefore = pid ? rssOf(pid) : undefined;
  prober.reset();
  const timeoutMs = c.timeoutMs ?? TIMEOUT_MS;
  const x = await exchange({ port: server.port, request, timeoutMs });
  await sleep(TAIL_MS); // the measurement window's tail, not a synchronisation
  const alive = await answersAgain(prober, HANG_MS);
  const outside = (await prober.read()).worstMs;
  const inside = alive ? await insideWorstMs(server.origin) : undefined;
  const rss = pid && alive ? rssOf(pid) : undefined;

  const statuses = x.responses.map((r) => r.status).join("+") || "no answer";
  const notes: string[] = [];
  if (x.responses.some((r) => r.status === 100)) notes.push("sent 100 Continue");
  if (x.timedOut) notes.push(`no answer within ${timeoutMs} ms`);
  if (!alive) notes.push(`/healthz silent for ${HANG_MS} ms after: server hung`);
  const reflects = c.marker === undefined ? "-" : x.text.includes(c.marker) ? "**yes**" : "no";
  const memory =
    rss && rssBefore ? `${(rss.rss / MB).toFixed(0)} (peak +${((rss.peak - rssBefore.peak) / MB).toFixed(0)})` : "n/a";
  const cells = [c.name, request.length, statuses, x.bytes, fmt(x.answeredMs), reflects];
  cells.push(`${alive ? "" : "≥ "}${fmt(outside)}`, fmt(inside), memory, notes.join("; "));
  console.error(`${c.name}: ${statuses}, ${x.bytes} B, worst /healthz ${fmt(outside)} ms`);
  return { row: `| ${cells.join(" | ")} |`, alive };
}

const rows: string[] = [];
const cases = CASES.filter((c) => !values.only || c.name.includes(values.only));
for (const [index, c] of cases.entries()) {
  const { row, alive } = await measure(c);
  rows.push(row);
  if (alive) continue;
  if (!server.peer) {
    for (const rest of cases.slice(index + 1)) rows.push(`| ${rest.name} | | not run: the target server hung | | | | | | | |`);
    break;
  }
  await server.peer.stop(500); // a hung server ignores SIGTERM: killed after 500 ms
  server = await startServer();
  prober.target(server.port);
  await answersAgain(prober, 10_000);
}
await prober.close();
await server.peer?.stop();

console.log(
  `\nhostile inputs against ${values.target ?? `${values.smcp} serve --store memory`}, one each, at most ${CAP} bytes;`,
);
console.log(`answer timeout ${TIMEOUT_MS} ms (3000 for the truncated envelope), hung after ${HANG_MS} ms without /healthz;`);
console.log(
  `worst /healthz: slowest probe answer from sending until ${TAIL_MS} ms after the answer (and until /healthz answers again);`,
);
console.log(
  `(idle, nothing sent, 1 s: ${fmt(idleMs)} ms); inside: the server's nodejs_eventloop_lag_max_seconds over the same window`,
);
console.log(`(n/a: no /metrics). Marker searched for in answers: ${MARK}\n`);
console.log(
  "| input | bytes sent | status | answer bytes | answer ms | reflects input | worst /healthz ms | worst loop delay ms (inside) | server RSS MB (peak +MB) | note |",
);
console.log("|---|---:|---|---:|---:|---|---:|---:|---:|---|");
for (const row of rows) console.log(row);
process.exit(0);
