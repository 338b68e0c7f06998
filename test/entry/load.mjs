// Imports one entry point and prints, as JSON: the modules it loaded, the native addons it opened,
// and how long the import took. Used by test/entrypoints.test.ts.
import { register } from "node:module";
import { performance } from "node:perf_hooks";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
const seen = [];
port1.on("message", (url) => seen.push(url));
register("./hooks.mjs", import.meta.url, { data: { port: port2 }, transferList: [port2] });
const addons = [];
const dlopen = process.dlopen;
process.dlopen = (module, filename, ...rest) => {
  addons.push(filename);
  return dlopen.call(process, module, filename, ...rest);
};
const started = performance.now();
await import(process.argv[2]);
const ms = performance.now() - started;
// Let the hook thread's last messages arrive.
await new Promise((resolve) => setTimeout(resolve, 50));
port1.close();
console.log(JSON.stringify({ ms, seen, addons }));
