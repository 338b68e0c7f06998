// Peer 4: smcp's node HTTP adapter (serveHttp: admission, body deadlines, pending limits) around a stub
// server whose handle() answers at once with a canned, pre-signed answer: what the HTTP edge costs
// alone, beside raw node:http. Runs the build in dist/ (npm run build). Prints its URL.
import type { SmcpServer } from "../../src/index.js";

const { serveHttp } = (await import(new URL("../../dist/http.js", import.meta.url).href)) as typeof import("../../src/http.js");
const body =
  '{"error":null,"ok":true,"request_id":"00000000-0000-0000-0000-000000000000","result":{"count":10,"total":56.125},"server_id":"bench","signature":"0000000000000000000000000000000000000000000000000000000000000000","status":"ok","ts_ms":1,"v":"mcp/0.1"}';
const answer = { httpStatus: 200, body, response: JSON.parse(body) };
const stub = {
  handle: async (input: string | Uint8Array) => {
    if (input.length === 0) throw new Error("empty");
    return answer;
  },
  reject: () => answer,
  drain() {},
  close: async () => {},
  healthFacts: undefined,
} as unknown as SmcpServer;
const running = await serveHttp(stub, { port: Number(process.argv[2] ?? 0) });
console.log(`listening on ${running.origin}`);
process.once("SIGTERM", () => void running.close().then(() => process.exit(0)));
