// Hostile upstream schemas: the event-loop block one costs, before and after the static cost
// analysis (src/tools/schema-cost.ts). Before: what main's code did with an upstream's input schema
// (ajv compile with its options, inlined refs, at startup; then one validation per call, the block
// every other client waits through), run in a worker thread that is stopped at a deadline, since the
// deeper variants would run for hours. After: the analysis refuses the schema before ajv sees it, so
// the block is the analysis, measured on this thread with perf_hooks' event-loop delay monitor.
// Also the analysis time and the (new) compile time of real schemas: server-everything's tools,
// the demo tools and the protocol tools. Bounded: each "before" case stops at --deadline-ms.
//
//   node --import tsx bench/hostile-schema.ts [--deadline-ms 8000] [--repeat 200] [--no-everything]
import { createRequire } from "node:module";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { demoTools } from "../src/index.js";
import type { JsonObject } from "../src/protocol/canonical.js";
import { describeTool } from "../src/tools/define.js";
import { protocolTools } from "../src/tools/protocol.js";
import { schemaCost } from "../src/tools/schema-cost.js";
import { EVERYTHING_JS } from "../test/mcp-helpers.js";

const { values } = parseArgs({
  options: {
    "deadline-ms": { type: "string", default: "8000" },
    repeat: { type: "string", default: "200" },
    "no-everything": { type: "boolean", default: false },
  },
});
const DEADLINE_MS = Number(values["deadline-ms"]);
const REPEAT = Number(values.repeat);

/** `levels` $defs, each referencing the next `fan` times (the finding's: 30 levels, fan 2). */
function doubling(levels: number, fan = 2): JsonObject {
  const defs: JsonObject = {};
  for (let i = 0; i < levels; i++) defs[`l${i}`] = { allOf: Array.from({ length: fan }, () => ({ $ref: `#/$defs/l${i + 1}` })) };
  defs[`l${levels}`] = { type: "object" };
  return { type: "object", $defs: defs, properties: { x: { $ref: "#/$defs/l0" } } };
}

/** A definition of `props` properties referenced `refs` times: inlined by ajv at every reference. */
function inlined(props: number, refs: number): JsonObject {
  const leaf = {
    type: "object",
    properties: Object.fromEntries(Array.from({ length: props }, (_, i) => [`p${i}`, { type: "integer" }])),
  };
  const properties = Object.fromEntries(Array.from({ length: refs }, (_, i) => [`r${i}`, { $ref: "#/$defs/leaf" }]));
  return { type: "object", $defs: { leaf }, properties };
}

const hostile: { name: string; schema: JsonObject; instance: unknown }[] = [
  { name: "finding: 30 levels × 2 refs", schema: doubling(30), instance: { x: {} } },
  { name: "shallower: 20 levels × 2 refs", schema: doubling(20), instance: { x: {} } },
  { name: "deeper: 40 levels × 2 refs", schema: doubling(40), instance: { x: {} } },
  { name: "wider: 16 levels × 4 refs", schema: doubling(16, 4), instance: { x: {} } },
  { name: "inlined: 100-property def × 100 refs", schema: inlined(100, 100), instance: {} },
];

// Runs in the worker: main's ajv options for a tool's own (authoritative) JSON Schema, then one call's validation.
const BEFORE = `
const { parentPort, workerData } = require("node:worker_threads");
const { Ajv2020 } = require(workerData.ajv);
const ajv = new Ajv2020({ allErrors: false, strict: false, validateFormats: false, addUsedSchema: false, code: { optimize: 1 }, ...workerData.options });
ajv.compile({ type: "object" }); // the meta-schemas, once, outside the measurement
let t = performance.now();
const validate = ajv.compile(workerData.schema);
parentPort.postMessage({ compileMs: performance.now() - t });
t = performance.now();
validate(workerData.instance);
parentPort.postMessage({ validateMs: performance.now() - t });
`;

async function before(schema: JsonObject, instance: unknown, options = {}): Promise<{ compile: string; validate: string }> {
  const ajvPath = createRequire(import.meta.url).resolve("ajv/dist/2020.js");
  const worker = new Worker(BEFORE, { eval: true, workerData: { schema, instance, ajv: ajvPath, options } });
  let compileMs: number | undefined;
  let validateMs: number | undefined;
  await new Promise<void>((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      void worker.terminate().then(() => resolve());
    };
    // The deadline: synchronous ajv work cannot be interrupted, but its thread can be stopped.
    const timer = setTimeout(stop, DEADLINE_MS);
    worker.on("message", (message: { compileMs?: number; validateMs?: number }) => {
      compileMs ??= message.compileMs;
      validateMs ??= message.validateMs;
      if (validateMs !== undefined) stop();
    });
    worker.on("error", stop);
  });
  const stopped = (ms: number) => `> ${Math.round(ms)} (stopped)`;
  if (compileMs === undefined) return { compile: stopped(DEADLINE_MS), validate: "not reached" };
  return {
    compile: compileMs.toFixed(1),
    validate: validateMs === undefined ? stopped(DEADLINE_MS - compileMs) : validateMs.toFixed(1),
  };
}

/** The analysis `REPEAT` times on this thread: median and worst ms, the worst event-loop delay seen, the verdict. */
async function analysis(schema: unknown): Promise<{ median: number; worst: number; loopMs: number; verdict: string }> {
  const times: number[] = [];
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let verdict = "";
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    const cost = schemaCost(schema);
    times.push(performance.now() - t);
    verdict = cost.ok ? `accepted, bound ${cost.bound}` : "refused";
    // Yield between runs, so the monitor sees each run as its own block.
    await new Promise((resolve) => setImmediate(resolve));
  }
  histogram.disable();
  times.sort((a, b) => a - b);
  return {
    median: times[Math.floor(times.length / 2)] ?? 0,
    worst: times[times.length - 1] ?? 0,
    loopMs: histogram.max / 1e6,
    verdict,
  };
}

const row = (cells: (string | number)[]) => console.log(`| ${cells.join(" | ")} |`);

console.log(
  `\nHostile schemas (before: main's compile + one call's validation, in a worker stopped at ${DEADLINE_MS} ms; after: the analysis, ${REPEAT} runs)\n`,
);
row([
  "schema",
  "chars",
  "before: compile ms",
  "before: one call's validation ms",
  "after: verdict",
  "after: analysis median / worst ms",
  "after: worst event-loop delay ms",
  "after, if accepted: compile / validation ms (inlineRefs off)",
]);
row(["---", "---:", "---:", "---:", "---", "---:", "---:", "---:"]);
for (const { name, schema, instance } of hostile) {
  const old = await before(schema, instance);
  const now = await analysis(schema);
  const compiled = now.verdict === "refused" ? undefined : await before(schema, instance, { inlineRefs: false });
  row([
    name,
    JSON.stringify(schema).length,
    old.compile,
    old.validate,
    now.verdict,
    `${now.median.toFixed(3)} / ${now.worst.toFixed(3)}`,
    now.loopMs.toFixed(1),
    compiled ? `${compiled.compile} / ${compiled.validate}` : "not compiled",
  ]);
}

const real: { name: string; schema: unknown }[] = [];
for (const tool of [...demoTools, ...protocolTools]) {
  const { input_schema, output_schema } = describeTool(tool);
  real.push({ name: `${tool.name} input`, schema: input_schema }, { name: `${tool.name} output`, schema: output_schema });
}
if (!values["no-everything"]) {
  const client = new Client({ name: "bench", version: "0" });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING_JS, "stdio"], stderr: "ignore" }));
  for (const tool of (await client.listTools()).tools) {
    real.push({ name: `everything/${tool.name} input`, schema: tool.inputSchema });
    if (tool.outputSchema) real.push({ name: `everything/${tool.name} output`, schema: tool.outputSchema });
  }
  await client.close();
}
console.log(`\nReal schemas: the analysis (${REPEAT} runs each)\n`);
row(["schema", "chars", "verdict", "median ms", "worst ms"]);
row(["---", "---:", "---", "---:", "---:"]);
let worstReal = 0;
for (const { name, schema } of real) {
  const now = await analysis(schema);
  worstReal = Math.max(worstReal, now.worst);
  row([name, JSON.stringify(schema).length, now.verdict, now.median.toFixed(3), now.worst.toFixed(3)]);
}
console.log(`\nworst analysis time of a real schema: ${worstReal.toFixed(3)} ms`);
