// Worker thread of bench/sign.ts: signs its share of unique batch_sum
// envelopes (chunks thread, thread + threads, ... of `chunk` bodies) and
// posts each chunk back as newline-terminated lines.
import { parentPort, workerData } from "node:worker_threads";
import { BATCH_NUMBERS, type BenchAlg, envelopeSigner } from "./fixtures.js";

const { count, thread, threads, chunk, tsMs, perSecond, alg } = workerData as {
  count: number;
  thread: number;
  threads: number;
  chunk: number;
  tsMs: number;
  /** 0: every body at tsMs. */
  perSecond: number;
  alg: BenchAlg;
};
const sign = envelopeSigner("batch_sum", { numbers: BATCH_NUMBERS }, alg);
for (let k = thread; k * chunk < count; k += threads) {
  const end = Math.min(count, (k + 1) * chunk);
  let text = "";
  for (let i = k * chunk; i < end; i++) text += `${sign(perSecond > 0 ? tsMs + Math.floor((i * 1000) / perSecond) : tsMs)}\n`;
  parentPort?.postMessage({ chunk: k, text });
}
