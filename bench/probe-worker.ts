// Worker thread of bench/probe.ts: sends GET /healthz over one keep-alive
// connection, waits ~1 ms after each answer, and keeps the worst latency
// since the last reset. On its own thread, so work on the main thread
// (building a 1 MiB body, reading a 37 MB answer) never delays a probe.
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { parentPort } from "node:worker_threads";
import { ResponseParser } from "./rawhttp.js";

const now = () => performance.timeOrigin + performance.now();
let socket: Socket | undefined;
let generation = 0;
let sentAt: number | undefined; // the probe in flight
let lastAnswer = now();
let worst = 0;

function run(port: number) {
  const mine = ++generation;
  socket?.destroy();
  const parser = new ResponseParser();
  const s = connect(port, "127.0.0.1");
  socket = s;
  const request = Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const send = () => {
    if (mine !== generation) return;
    sentAt = now();
    s.write(request);
  };
  s.once("connect", send);
  s.on("data", (chunk: Buffer) => {
    if (parser.push(chunk).length === 0 || sentAt === undefined) return;
    lastAnswer = now();
    worst = Math.max(worst, lastAnswer - sentAt);
    sentAt = undefined;
    setTimeout(send, 1);
  });
  s.on("error", () => {});
  s.on("close", () => {
    // The server closed it: reconnect, unless told about another server meanwhile.
    if (mine === generation) setTimeout(() => mine === generation && run(port), 10);
  });
}

parentPort?.on("message", (message: { cmd: "target"; port: number } | { cmd: "reset" } | { cmd: "read" }) => {
  if (message.cmd === "target") {
    sentAt = undefined;
    lastAnswer = now();
    run(message.port);
  } else if (message.cmd === "reset") {
    worst = 0; // a probe in flight counts in full when it answers: it overlaps the new window
  } else {
    const inFlight = sentAt === undefined ? 0 : now() - sentAt;
    parentPort?.postMessage({ worstMs: Math.max(worst, inFlight), silentMs: now() - lastAnswer });
  }
});
