// In-process cost of SmcpServer.handle (no HTTP): verify, replay check, dispatch, sign.
//   node --import tsx bench/handle.ts
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createServer } from "../src/index.js";
import { toKeys } from "../src/protocol/keyring.js";
import { signMessage } from "../src/protocol/sign.js";

const key = toKeys("bench-client-secret-0123456789", "b")[0] as ReturnType<typeof toKeys>[number];
const server = createServer({
  keyring: {
    serverId: "bench",
    serverSecrets: "bench-server-secret-0123456789",
    clients: { bench: "bench-client-secret-0123456789" },
  },
});
const N = 30000;
for (let r = 0; r < 4; r++) {
  const bodies = Array.from(
    { length: N },
    () =>
      signMessage(
        {
          v: "mcp/0.1",
          request_id: randomUUID(),
          ts_ms: Date.now(),
          client_id: "bench",
          server_id: "bench",
          tool: "batch_sum",
          args: { numbers: [1.5, 2.25, 3, 4.75, 5, 6.5, 7, 8.125, 9, 10] },
          nonce: randomUUID(),
        },
        key,
      ).body,
  );
  const t0 = performance.now();
  for (const b of bodies) {
    const res = await server.handle(b);
    if (!res.response.ok) throw new Error(res.body);
  }
  console.log(`handle: ${(((performance.now() - t0) * 1000) / N).toFixed(1)} us/request`);
}
await server.close();
