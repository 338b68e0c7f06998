#!/usr/bin/env node
import { processIO } from "./io.js";
import { runCli } from "./run.js";

// A closed pipe (`smcp tools | head`) ends the output quietly instead of with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

runCli(process.argv.slice(2), processIO()).then((code) => {
  process.exitCode = code;
});
