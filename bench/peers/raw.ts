// Peer 1: a raw node:http server that parses the JSON body and answers a
// JSON object: the ceiling for any Node HTTP protocol. Prints its URL.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { args: { numbers: number[] } };
    const numbers = body.args.numbers;
    let total = 0;
    for (const n of numbers) total += n;
    const out = JSON.stringify({ ok: true, result: { count: numbers.length, total } });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
    res.end(out);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
