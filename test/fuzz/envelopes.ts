/**
 * Hostile request envelopes with the answer SPEC §3 prescribes for each.
 * A case is built from a tool call (valid or not, with random marker
 * strings planted in tool names, job ids, argument keys and values) and up
 * to two envelope faults (shape, client, signature, server, freshness); the
 * expected code is the first failure in SPEC §3's order. Bodies come
 * canonical or re-serialized (other key order, whitespace).
 */
import fc from "fast-check";
import { canonicalize, type JsonObject, type JsonValue } from "../../src/protocol/canonical.js";
import type { ErrorCode } from "../../src/protocol/errors.js";
import { type Key, toKeys } from "../../src/protocol/keys.js";
import { CLIENT_ID, OTHER_CLIENT_SECRET, SERVER_ID } from "../helpers.js";
import { forgeSigned } from "./forge.js";
import { clientKey, FIXED_NOW } from "./json.js";

/** What a fuzzed request expects: an error code, or a normal status. */
export type Expected = ErrorCode | "ok" | "accepted";

/** One request and what SPEC §3 says its answer is. */
export interface RequestCase {
  body: string;
  /** Strings planted in the request that must never come back. */
  markers: string[];
  /** The request_id the answer must carry ("" when the envelope has none usable). */
  requestId: string;
  expected: Expected;
  /** A normal answer (the nonce step was passed): sending it again must be `replay`. */
  replayable: boolean;
  /** The faults and the call, for the failure message. */
  why: string;
}

/** A marker: text that cannot occur in an answer unless copied from the request. */
export const marker: fc.Arbitrary<string> = fc.stringMatching(/^[A-Z]{8}$/).map((s) => `MRK${s}`);

/** A marker dressed as a hostile value: terminal escape sequences, quotes, long text. */
const hostile = (m: string) =>
  fc.constantFrom(m, `\u001b[31m${m}\u001b[0m`, `\u001b]0;${m}\u0007`, `"${m}"\\`, `${m}${"x".repeat(300)}`, `é😀${m}`);

interface ToolCall {
  tool: string;
  args: JsonObject;
  /** What the call gives once the envelope is good. */
  outcome: Expected;
}

const object = (entries: [string, JsonValue][]): JsonObject => {
  const out: JsonObject = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
};

// Doubles whose JSON.stringify text means the same number as their canonical text (not unsafe integers).
const number = fc
  .oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }))
  .filter((d) => !Number.isInteger(d) || Number.isSafeInteger(d));

function toolCall(m: string): fc.Arbitrary<ToolCall> {
  const h = hostile(m);
  const call = (tool: string, outcome: Expected) => (args: JsonObject) => ({ tool, args, outcome });
  return fc.oneof(
    // spy: valid (a marker in a free string that the tool never echoes), then each kind of invalid.
    fc
      .record({
        n: number,
        s: fc.option(fc.constant(m), { nil: undefined }),
        mode: fc.option(fc.constantFrom("a", "b"), { nil: undefined }),
      })
      .map((r) => call("spy", "ok")(JSON.parse(JSON.stringify(r)) as JsonObject)),
    h.map((v) => call("spy", "bad_args")({ n: v })),
    fc.tuple(h, h).map(([k, v]) =>
      call(
        "spy",
        "bad_args",
      )(
        object([
          ["n", 1],
          [k, v],
        ]),
      ),
    ),
    h.map((v) => call("spy", "bad_args")({ n: 1, mode: v })),
    h.map((v) => call("spy", "bad_args")({ n: 1, tags: [v, v, v] })),
    h.map((v) => call("spy", "bad_args")({ s: v })),
    fc.array(h, { minLength: 21, maxLength: 40 }).map((vs) => call("spy", "bad_args")(object(vs.map((v, i) => [`${v}${i}`, v])))),
    // batch_sum
    fc
      .array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 5 })
      .map((numbers) => call("batch_sum", "ok")({ numbers })),
    fc.array(h, { minLength: 1, maxLength: 30 }).map((numbers) => call("batch_sum", "bad_args")({ numbers })),
    fc.constant(call("batch_sum", "bad_args")({ numbers: [] })),
    // poll_job / cancel_job: an unknown id is unknown_job, never echoed.
    fc
      .tuple(fc.constantFrom("poll_job", "cancel_job"), h)
      .map(([tool, id]) => call(tool, "unknown_job")({ job_id: id.slice(0, 256) })),
    fc
      .tuple(fc.constantFrom("poll_job", "cancel_job"), h)
      .map(([tool, id]) => call(tool, "bad_args")({ job_id: id.padEnd(300, "y") })),
    fc.tuple(fc.constantFrom("poll_job", "cancel_job"), h).map(([tool, id]) =>
      call(
        tool,
        "bad_args",
      )(
        object([
          ["job_id", "j"],
          [id, id],
        ]),
      ),
    ),
    fc.constantFrom("poll_job", "cancel_job").map((tool) => call(tool, "bad_args")({ job_id: "" })),
    // argument-less tools
    fc.constantFrom("server_identity", "list_tools", "list_jobs").map((tool) => call(tool, "ok")({})),
    fc
      .tuple(fc.constantFrom("server_identity", "list_tools", "list_jobs"), h)
      .map(([tool, v]) => call(tool, "bad_args")(object([[v, v]]))),
    // a job tool: accepted (the payload holds markers; the answer is only a job id)
    fc.integer({ min: 1, max: 20 }).map((seconds) => call("start_long_task", "accepted")({ seconds, payload: object([[m, m]]) })),
    fc
      .constantFrom<JsonValue>(0, 21, 1.5, [], "3")
      .map((seconds) => call("start_long_task", "bad_args")({ seconds, payload: object([[m, m]]) })),
    // unknown tools
    h.map((tool) => call(tool.slice(0, 256), "unknown_tool")({})),
  );
}

/** Faults in an envelope, by the step of SPEC §3 that catches them. */
type Fault =
  | { step: "shape"; kind: "drop"; field: string }
  | { step: "shape"; kind: "extra"; key: string; value: string }
  | { step: "shape"; kind: "set"; field: string; value: JsonValue }
  | { step: "shape"; kind: "float_ts"; lexeme: "0" | "E0" | "e0" }
  | { step: "client"; id: string }
  | { step: "signature"; kind: "other_key" | "upper" | "short" | "long" | "flip" }
  | { step: "server"; id: string }
  | { step: "fresh"; offset: number };

const FIELDS = ["v", "request_id", "ts_ms", "client_id", "server_id", "tool", "args", "nonce", "signature"];
const ORDER: Fault["step"][] = ["shape", "client", "signature", "server", "fresh"];
const CODES: Record<Fault["step"], ErrorCode> = {
  shape: "bad_envelope",
  client: "unknown_client",
  signature: "bad_signature",
  server: "wrong_server",
  fresh: "stale",
};

function fault(m: string): fc.Arbitrary<Fault> {
  const h = hostile(m);
  return fc.oneof(
    fc.constantFrom(...FIELDS).map((field) => ({ step: "shape" as const, kind: "drop" as const, field })),
    fc.tuple(h, h).map(([key, value]) => ({ step: "shape" as const, kind: "extra" as const, key, value })),
    fc
      .oneof(
        fc.constantFrom<[string, JsonValue]>(
          ["v", "mcp/0.2"],
          ["v", 1],
          ["request_id", 7],
          ["request_id", null],
          ["ts_ms", 1.5],
          ["ts_ms", 1e20],
          ["ts_ms", "1795304232049"],
          ["args", []],
          ["args", null],
          ["nonce", ""],
          ["nonce", 5],
          ["signature", 12],
          ["client_id", 1],
          ["tool", {}],
        ),
        h.map((v): [string, JsonValue] => ["v", v]),
        fc
          .tuple(fc.constantFrom("client_id", "server_id", "tool", "nonce", "request_id"), h)
          .map(([f, v]): [string, JsonValue] => [f, v.padEnd(257, "z")]),
      )
      .map(([field, value]) => ({ step: "shape" as const, kind: "set" as const, field, value })),
    fc
      .constantFrom("0" as const, "E0" as const, "e0" as const)
      .map((lexeme) => ({ step: "shape" as const, kind: "float_ts" as const, lexeme })),
    h.map((id) => ({ step: "client" as const, id: id.slice(0, 256) })),
    fc.constantFrom("other_key", "upper", "short", "long", "flip").map((kind) => ({ step: "signature" as const, kind })),
    h.map((id) => ({ step: "server" as const, id: id.slice(0, 256) })),
    fc
      .oneof(fc.integer({ min: 300_001, max: 2_000_000_000 }), fc.integer({ min: -2_000_000_000, max: -300_001 }))
      .map((offset) => ({ step: "fresh" as const, offset })),
  );
}

const otherKey = toKeys(OTHER_CLIENT_SECRET, "other client")[0] as Key;

function build(
  call: ToolCall,
  faults: Fault[],
  ids: { requestId: string; nonce: string; tsOffset: number },
  layout: Layout,
): RequestCase {
  const fields: Record<string, JsonValue> = {
    v: "mcp/0.1",
    request_id: ids.requestId,
    ts_ms: FIXED_NOW + ids.tsOffset,
    client_id: CLIENT_ID,
    server_id: SERVER_ID,
    tool: call.tool,
    args: call.args,
    nonce: ids.nonce,
  };
  let key = clientKey;
  let dropSignature = false;
  let signatureEdit: ((s: string) => JsonValue) | undefined;
  let signatureValue: JsonValue | undefined;
  let floatTs: string | undefined;
  const extras: [string, string][] = [];
  // Shape faults last, so that a later fault cannot undo one (a dropped field set again).
  for (const f of [...faults.filter((x) => x.step !== "shape"), ...faults.filter((x) => x.step === "shape")]) {
    switch (f.step) {
      case "shape":
        if (f.kind === "drop") {
          if (f.field === "signature") dropSignature = true;
          else delete fields[f.field];
        } else if (f.kind === "extra") {
          extras.push([f.key, f.value]); // hostile keys: never one of the nine fields
        } else if (f.kind === "set") {
          if (f.field === "signature") signatureValue = f.value;
          else fields[f.field] = f.value;
        } else {
          floatTs = f.lexeme;
        }
        break;
      case "client":
        fields.client_id = f.id;
        break;
      case "signature":
        if (f.kind === "other_key") {
          // Signed by another client's key, while claiming to be the test client.
          key = otherKey;
        } else {
          signatureEdit = {
            upper: (s: string) => s.toUpperCase(),
            short: (s: string) => s.slice(0, 63),
            long: (s: string) => s + s,
            flip: (s: string) => (s[0] === "0" ? "1" : "0") + s.slice(1),
          }[f.kind];
        }
        break;
      case "server":
        fields.server_id = f.id;
        break;
      case "fresh":
        if (typeof fields.ts_ms === "number") fields.ts_ms = FIXED_NOW + f.offset;
        break;
    }
  }
  for (const [k, v] of extras)
    Object.defineProperty(fields, k, { value: v, enumerable: true, writable: true, configurable: true });
  const signed = forgeSigned(fields, key) as Record<string, JsonValue>;
  const message: Record<string, JsonValue> = { ...fields };
  for (const [k, v] of extras)
    Object.defineProperty(message, k, { value: v, enumerable: true, writable: true, configurable: true });
  if (!dropSignature) {
    const signature = signed.signature as string;
    message.signature = signatureValue !== undefined ? signatureValue : signatureEdit ? signatureEdit(signature) : signature;
  }
  let body = layout.canonical ? canonicalize(message) : reserialize(message, layout);
  if (floatTs !== undefined && typeof fields.ts_ms === "number") {
    body = body.replace(
      /("ts_ms":\s*)(\d+)/,
      (_all, head: string, digits: string) => `${head}${digits}${floatTs === "0" ? ".0" : floatTs}`,
    );
  }

  // The first failure in SPEC §3's order decides the code.
  const steps = new Set(faults.map((f) => f.step));
  const shapeBroken =
    faults.some((f) => f.step === "shape" && f.kind !== "float_ts") ||
    (floatTs !== undefined && typeof fields.ts_ms === "number");
  let expected: Expected = call.outcome;
  if (shapeBroken) expected = "bad_envelope";
  else {
    for (const step of ORDER) {
      if (step !== "shape" && steps.has(step)) {
        expected = CODES[step];
        break;
      }
    }
  }
  const requestId = typeof message.request_id === "string" && message.request_id.length <= 256 ? message.request_id : "";
  const markers = collectMarkers(message).filter((m) => !requestId.includes(m));
  const replayable = !["bad_envelope", "unknown_client", "bad_signature", "wrong_server", "stale"].includes(expected);
  const why = JSON.stringify({ tool: call.tool, outcome: call.outcome, faults });
  return { body, markers, requestId, expected, replayable, why };
}

/** Every planted marker in a message (keys and values, any depth). */
function collectMarkers(value: JsonValue): string[] {
  const found = new Set<string>();
  const visit = (v: JsonValue) => {
    if (typeof v === "string") for (const m of v.match(/MRK[A-Z]{8}/g) ?? []) found.add(m);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        visit(k);
        visit(x);
      }
  };
  visit(value);
  return [...found];
}

/** How a body is laid out: canonical, or JSON.stringify with shuffled keys and indentation. */
interface Layout {
  canonical: boolean;
  indent: number;
  seed: number;
}

function reserialize(message: Record<string, JsonValue>, layout: Layout): string {
  const keys = Object.keys(message);
  // A deterministic shuffle from the case's seed.
  let s = layout.seed;
  for (let i = keys.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
  const shuffled: Record<string, JsonValue> = {};
  for (const k of keys)
    Object.defineProperty(shuffled, k, { value: message[k], enumerable: true, writable: true, configurable: true });
  return JSON.stringify(shuffled, null, layout.indent);
}

/** A request case: a tool call, up to two faults, ids, a layout. */
export const requestCase: fc.Arbitrary<RequestCase> = marker.chain((m) =>
  fc
    .record({
      call: toolCall(m),
      faults: fc.array(fault(m), { maxLength: 2 }),
      requestId: fc.oneof(fc.uuid(), fc.constantFrom("", "r-1", "é😀\u0000"), fc.string({ maxLength: 256 })),
      nonce: fc.uuid(),
      tsOffset: fc.integer({ min: -300_000, max: 300_000 }),
      layout: fc.record({ canonical: fc.boolean(), indent: fc.constantFrom(0, 1, 2), seed: fc.nat() }),
    })
    .map((r) => build(r.call, r.faults, r, r.layout)),
);
