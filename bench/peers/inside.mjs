// Preloaded into a bench peer (`node --import bench/peers/inside.mjs`, by bench/http.ts's `--inside on`): what
// the server itself saw, for each 100 ms, appended as a line to PID.txt in the directory BENCH_INSIDE_DIR names
// (each process its own: `serve --workers` forks inherit the preload):
//
//   <from epoch ms> <to epoch ms> <longest event-loop delay ms> <requests whose 'request' event to 'finish'
//   took < 1, 1-2, 2-5, 5-10, 10-20, 20-50, 50-100, >= 100 ms: 8 counts>
//
// (a line covers from the previous line's time: more than 100 ms when the loop stood still).
//
// wrk's latency runs from its write of a request to its read of the answer. The loop delay says whether the
// server's loop stood still (its garbage collector or code, or its CPU taken away); the server's own time per
// request says how much of wrk's figure passed inside the server, from the parsed request to the answer handed
// to the kernel. What is left lay in the kernel's queues or in the generator. Plain JavaScript, so that a server
// started without tsx (`smcp serve` from dist/) loads it alike.
import { appendFileSync } from "node:fs";
import { Server } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** The buckets' upper bounds, ms (the last is open). */
const BOUNDS = [1, 2, 5, 10, 20, 50, 100];

const dir = process.env.BENCH_INSIDE_DIR;
if (dir) {
  const file = `${dir}/${process.pid}.txt`;
  const counts = new Array(BOUNDS.length + 1).fill(0);
  const emit = Server.prototype.emit;
  // Every node:http server of the process (smcp's adapter, raw's, the floor's): from the 'request' event, which
  // fires once the request's headers are parsed, to the response's 'finish', once its last bytes went to the kernel.
  Server.prototype.emit = function (event, ...args) {
    if (event === "request") {
      const started = performance.now();
      args[1].once("finish", () => {
        const ms = performance.now() - started;
        let i = 0;
        while (i < BOUNDS.length && ms >= BOUNDS[i]) i++;
        counts[i]++;
      });
    }
    return emit.call(this, event, ...args);
  };
  // 1 ms resolution: a timer every millisecond, the same few wake-ups for every peer it is loaded into.
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let from = Date.now();
  setInterval(() => {
    const to = Date.now();
    // max is in ns; 0 when nothing was sampled.
    appendFileSync(file, `${from} ${to} ${(histogram.max / 1e6).toFixed(2)} ${counts.join(" ")}\n`);
    from = to;
    histogram.reset();
    counts.fill(0);
  }, 100).unref();
}
