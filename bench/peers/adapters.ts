// Peer 5 (issue 19 item 4, "whichever measures faster"): one smcp server (memory stores, the demo tools,
// the bench keys, no logs, no limiter) behind one of its two HTTP adapters, from the build in dist/:
//   node  - serveHttp, the node:http adapter (what `smcp serve` runs);
//   fetch - the web-standard fetch handler behind node:http, the way Hono's and srvx's node adapters
//           run one: each request becomes a Request, each Response is written back;
//   plain - no adapter: server.handle behind the floor's own bare node:http code (read the body, handle,
//           write the answer), to tell what the adapter costs beside a real handle from what the core does.
// A second argument `deferred` (issue 22 item 3) gives the server a memory replay cache that answers a turn
// later, as a shared store's round trip does: one turn's reservations answered together after it (a
// setImmediate), with no store I/O. Beside the same peer without it, it measures what splitting each
// request's work across two event-loop turns costs, apart from what talking to Redis costs.
// Prints its URL.
import { createServer as createNodeServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { BENCH } from "../fixtures.js";

const mode = process.argv[2] === "fetch" || process.argv[2] === "plain" ? process.argv[2] : "node";
const smcp = (await import(new URL("../../dist/index.js", import.meta.url).href)) as typeof import("../../src/index.js");
const http = (await import(new URL("../../dist/http.js", import.meta.url).href)) as typeof import("../../src/http.js");
type NonceStore = NonNullable<Parameters<typeof smcp.createServer>[0]["nonceStore"]>;

/** smcp's memory replay cache, its answers held to the end of the turn and given together, as a batch's. */
function deferredNonces(): NonceStore {
  const store = new smcp.MemoryNonceStore();
  let waiting: (() => void)[] = [];
  const answerAll = () => {
    const batch = waiting;
    waiting = [];
    for (const answer of batch) answer();
  };
  return {
    reserve(clientId, nonce, expiresAt) {
      const fresh = store.reserve(clientId, nonce, expiresAt);
      return new Promise((resolve, reject) => {
        if (waiting.length === 0) setImmediate(answerAll);
        waiting.push(() => fresh.then(resolve, reject));
      });
    },
    close: () => store.close(),
  };
}

const server = smcp.createServer({
  keyring: { serverId: "bench", serverSecrets: BENCH.serverSecret, clients: { bench: BENCH.clientSecret } },
  tools: smcp.demoTools,
  limits: { rate: 0 }, // no limiter: the one bench client would pass the default 1,000/s
  ...(process.argv[3] === "deferred" ? { nonceStore: deferredNonces() } : {}),
});

if (mode === "plain") {
  const node = createNodeServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void server.handle(Buffer.concat(chunks)).then((out) => {
        res.writeHead(out.httpStatus, { "content-type": "application/json", "content-length": Buffer.byteLength(out.body) });
        res.end(out.body);
      });
    });
  });
  node.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
  console.log(`listening on http://127.0.0.1:${(node.address() as AddressInfo).port}`);
  process.once("SIGTERM", () => {
    node.closeAllConnections();
    node.close(() => process.exit(0));
  });
} else if (mode === "node") {
  const running = await http.serveHttp(server, { port: 0 });
  console.log(`listening on ${running.origin}`);
  process.once("SIGTERM", () => void running.close().then(() => process.exit(0)));
} else {
  const handle = smcp.createFetchHandler(server);
  const node = createNodeServer(async (req, res) => {
    const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
      method: req.method ?? "GET",
      headers: req.headers as Record<string, string>,
      ...(req.method === "POST" ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" } : {}),
    } as RequestInit);
    const response = await handle(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  node.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
  console.log(`listening on http://127.0.0.1:${(node.address() as AddressInfo).port}`);
  process.once("SIGTERM", () => {
    node.closeAllConnections();
    node.close(() => process.exit(0));
  });
}
