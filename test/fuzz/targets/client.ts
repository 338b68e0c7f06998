/**
 * Sandbox target: an smcp client whose transport brings back hostile
 * answers, built from a recipe (test/fuzz/answers.ts) for the request it
 * actually sent: through an in-process fake transport, and through real
 * HTTP from a raw node:http server that sends the bytes as told (whole,
 * stalled, cut, or with a Content-Length that lies).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { undiciTransport } from "../../../src/http.js";
import { createClient, httpTransport, SmcpError, type Transport } from "../../../src/index.js";
import { parseLossless } from "../../../src/protocol/parse.js";
import { CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET } from "../../helpers.js";
import { type AnswerRecipe, buildAnswer, HTTP_TIMEOUT_MS } from "../answers.js";
import { serveSandbox } from "../child.js";
import { FIXED_NOW } from "../json.js";

/** How a call ended. */
export interface CallOutcome {
  kind: "result" | "remote" | "local" | "other";
  code?: string;
  name?: string;
  message?: string;
  ms: number;
  /** The bytes sent mean what the unmutated answer meant (same canonical form). */
  same: boolean;
}

let recipe: AnswerRecipe | undefined;
let same = false;

function answerFor(requestBody: string): Uint8Array {
  if (!recipe) throw new Error("no recipe");
  const requestId = (JSON.parse(requestBody) as { request_id: string }).request_id;
  const { original, bytes } = buildAnswer(recipe, requestId);
  same = canonicalOf(original) !== undefined && canonicalOf(original) === canonicalOf(bytes);
  return bytes;
}

function canonicalOf(bytes: Uint8Array): string | undefined {
  try {
    return parseLossless(bytes).canonical;
  } catch {
    return undefined;
  }
}

const fake: Transport = {
  async send(body) {
    return { body: answerFor(body), status: recipe?.httpStatus ?? 200 };
  },
};

let http: Server | undefined;
let url = "";
async function startHttp(): Promise<void> {
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const bytes = answerFor(Buffer.concat(chunks).toString("utf8"));
      const delivery = recipe?.delivery ?? "whole";
      const half = bytes.subarray(0, Math.floor(bytes.length / 2));
      const length = delivery === "short_length" ? bytes.length + 10 : bytes.length;
      res.writeHead(recipe?.httpStatus ?? 200, { "content-type": "application/json", "content-length": String(length) });
      if (delivery === "whole") res.end(bytes);
      else if (delivery === "short_length") {
        res.write(bytes);
        res.socket?.end();
      } else if (delivery === "cut") res.write(half, () => res.socket?.destroy());
      else res.write(half); // stall: never finish
    });
  });
  http.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => http?.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
}

const options = {
  clientId: CLIENT_ID,
  clientSecret: CLIENT_SECRET,
  serverId: SERVER_ID,
  serverSecret: SERVER_SECRET,
  now: () => FIXED_NOW,
};
const inProcess = createClient({ ...options, transport: fake });
// One client per HTTP transport, made once the raw server listens (an undici transport holds an agent).
const httpClients = new Map<string, ReturnType<typeof createClient>>();
function overHttp(transport: "http" | "undici") {
  let client = httpClients.get(transport);
  if (!client) {
    const over = transport === "http" ? httpTransport : undiciTransport;
    client = createClient({ ...options, transport: over(url, { timeoutMs: HTTP_TIMEOUT_MS }) });
    httpClients.set(transport, client);
  }
  return client;
}

async function call(transport: "inprocess" | "http" | "undici", r: AnswerRecipe): Promise<CallOutcome> {
  recipe = r;
  same = false;
  if (transport !== "inprocess" && !http) await startHttp();
  const client = transport === "inprocess" ? inProcess : overHttp(transport);
  const started = performance.now();
  const ms = () => performance.now() - started;
  try {
    await client.call("spy", { n: 1 });
    return { kind: "result", ms: ms(), same };
  } catch (error) {
    if (error instanceof SmcpError) return { kind: error.origin, code: error.code, ms: ms(), same };
    const e = error as Error;
    return { kind: "other", name: e.name, message: e.message, ms: ms(), same };
  }
}

serveSandbox({
  call: ({ transport, recipe: r }: { transport: "inprocess" | "http"; recipe: AnswerRecipe }) => call(transport, r),
});
