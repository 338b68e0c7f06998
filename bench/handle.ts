// In-process cost of SmcpServer.handle (no HTTP): verify, replay check, dispatch, sign.
//   node --import tsx bench/handle.ts
import { performance } from "node:perf_hooks";
import { createServer } from "../src/index.js";
import { BENCH, benchEnvelope } from "./fixtures.js";

const server = createServer({
  keyring: { serverId: "bench", serverSecrets: BENCH.serverSecret, clients: { bench: BENCH.clientSecret } },
});
const N = 30000;
for (let r = 0; r < 4; r++) {
  const bodies = Array.from({ length: N }, () =>
    benchEnvelope("batch_sum", { numbers: [1.5, 2.25, 3, 4.75, 5, 6.5, 7, 8.125, 9, 10] }),
  );
  const t0 = performance.now();
  for (const body of bodies) {
    const answer = await server.handle(body);
    if (!answer.response.ok) throw new Error(answer.body);
  }
  console.log(`handle: ${(((performance.now() - t0) * 1000) / N).toFixed(1)} us/request`);
}
await server.close();
