// Worker thread of bench/sign.ts: signs `count` unique batch_sum envelopes
// and posts them back in batches of newline-terminated lines.
import { parentPort, workerData } from "node:worker_threads";
import { BATCH_NUMBERS, type BenchAlg, envelopeSigner } from "./fixtures.js";

const { count, tsMs, alg } = workerData as { count: number; tsMs: number; alg: BenchAlg };
const BATCH = 10_000;
const sign = envelopeSigner("batch_sum", { numbers: BATCH_NUMBERS }, alg);
for (let done = 0; done < count; ) {
  const n = Math.min(BATCH, count - done);
  let text = "";
  for (let i = 0; i < n; i++) text += `${sign(tsMs)}\n`;
  parentPort?.postMessage(text);
  done += n;
}
