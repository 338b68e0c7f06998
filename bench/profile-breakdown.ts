// Splits a V8 .cpuprofile of a loaded `smcp serve` into the parts of a request (issue 22): each sample goes to
// the innermost frame on its stack that names a part (parse, canonical bytes, validation, replay cache,
// limiter, logging, metrics, response, HTTP, GC...), as a share of busy (non-idle) time.
//   node --import tsx bench/profile-breakdown.ts FILE.cpuprofile [REQUESTS]
// With REQUESTS (the requests the profiled server answered, as bench/http.ts prints under --cpu-prof), each
// part is also given in µs of CPU per request.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
const profile = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
};

// First match wins, tested from the sampled frame outwards.
const PARTS: [string, (name: string, url: string) => boolean][] = [
  ["GC", (n) => n === "(garbage collector)"],
  ["logging (pino, observer)", (_, u) => /pino|sonic-boom|fast-redact|quick-format|server\/observe\.js/.test(u)],
  ["metrics (prom-client)", (_, u) => /prom-client/.test(u)],
  ["limiter", (_, u) => /rate-limiter-flexible|server\/limits\.js/.test(u)],
  ["replay cache", (_, u) => /nonce/.test(u)],
  ["parse + canonical bytes (request)", (n, u) => /protocol\/parse\.js/.test(u) || n === "decodeUtf8"],
  ["HMAC verify", (n) => n === "verifyCanonical"],
  ["response: canonical + sign", (n) => n === "signResponse" || n === "#reply" || n === "#fail"],
  ["validation (envelope, args)", (_, u) => /tools\/validate\.js|ajv|zod|protocol\/messages\.js|tools\/registry\.js/.test(u)],
  ["tool run", (_, u) => /tools\/(invoke|demo|runs)\.js/.test(u)],
  ["smcp core (other)", (_, u) => /server\/core\.js|server\/clients\.js/.test(u)],
  ["HTTP adapter (smcp)", (_, u) => /server\/http-(node|common)\.js/.test(u)],
  // The store client libraries' own JavaScript (smcp's store code is under "replay cache" or elsewhere).
  ["Redis client library (ioredis)", (_, u) => /ioredis|redis-parser|denque|cluster-key-slot/.test(u)],
  ["SQLite client library (better-sqlite3)", (_, u) => /better-sqlite3/.test(u)],
  ["node HTTP, sockets, streams", (n, u) => /^node:/.test(u) || n === "writev" || n === "writeUtf8String" || n === "writeString"],
];

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const partOf = new Map<number, string>();
function part(id: number): string {
  const known = partOf.get(id);
  if (known) return known;
  let found = "other (program, microtasks, ...)";
  // smcp's and its libraries' parts first (node's crypto under verifyCanonical is the verify), node's last.
  search: for (const parts of [PARTS.slice(0, -1), PARTS.slice(-1)]) {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame) break;
      const hit = parts.find(([, test]) => test(frame.functionName, frame.url));
      if (hit) {
        found = hit[0];
        break search;
      }
    }
  }
  partOf.set(id, found);
  return found;
}
const totals = new Map<string, number>();
let busy = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  if (byId.get(id)?.callFrame.functionName === "(idle)") return;
  busy += dt;
  const p = part(id);
  totals.set(p, (totals.get(p) ?? 0) + dt);
});
const requests = Number(process.argv[3]) || undefined;
const perRequest = (us: number) => (requests ? ` ${(us / requests).toFixed(2)} |` : "");
console.log(
  `busy ${(busy / 1e6).toFixed(2)} s${requests ? `, ${requests} requests: ${(busy / requests).toFixed(1)} µs each` : ""}\n`,
);
console.log(`| part | share of busy time |${requests ? " µs per request |" : ""}\n|---|---:|${requests ? "---:|" : ""}`);
for (const [p, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  console.log(`| ${p} | ${((us / busy) * 100).toFixed(1)}% |${perRequest(us)}`);
}
